/**
 * The Lua scripts of the Redis query cache (query-cache-redis.ts). Each runs atomically, so a
 * lookup reads the generation and its entry at one instant, and a store checks the generation and
 * the ingest mark and writes in one step.
 *
 * Keys: KEYS[1] is the generation counter `<prefix>qc:v1:gen`. Entries live under
 * `<prefix>qc:v1:{<tenant>}:g<generation>` (the `base` argument is that without the number):
 *   :w:<trace hex>  the window "first-start last-end" (ns), or TOMB: written within the quiet period
 *   :t:<trace hex>  the assembled trace (query-cache-codec.ts)
 *   :ops            the catalog (JSON, in the reader's order); :ops:set its members, for ingest
 *   :ops:tomb       an operation the catalog may lack was written within the quiet period
 * Entry names are built inside the scripts from the generation, so the cache needs one Redis (or
 * one primary), not a Redis Cluster.
 */

/** ARGV: bump (1: INCR the generation first), base, trace hex → {generation, t|w|m, value}. */
export const LOOKUP_TRACE_LUA = `
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local g = redis.call('GET', KEYS[1]) or '0'
local base = ARGV[2] .. g
local t = redis.call('GET', base .. ':t:' .. ARGV[3])
if t then return {g, 't', t} end
local w = redis.call('GET', base .. ':w:' .. ARGV[3])
if w and w ~= 'TOMB' then return {g, 'w', w} end
return {g, 'm', ''}
`;

/**
 * ARGV: expected generation, base, trace hex, ttl ms, window, trace ('' = window only) → 1 stored,
 * 0 refused (the generation moved, or the trace was written since the lookup).
 */
export const STORE_TRACE_LUA = `
local g = redis.call('GET', KEYS[1]) or '0'
if g ~= ARGV[1] then return 0 end
local base = ARGV[2] .. g
local wk = base .. ':w:' .. ARGV[3]
if redis.call('GET', wk) == 'TOMB' then return 0 end
redis.call('SET', wk, ARGV[5], 'PX', ARGV[4])
if ARGV[6] ~= '' then redis.call('SET', base .. ':t:' .. ARGV[3], ARGV[6], 'PX', ARGV[4]) end
return 1
`;

/** ARGV: bump, base → {generation, catalog JSON or ''}. */
export const LOOKUP_OPERATIONS_LUA = `
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[2] .. g .. ':ops') or ''}
`;

/** ARGV: expected generation, base, ttl ms, catalog JSON, members... → 1 stored, 0 refused. */
export const STORE_OPERATIONS_LUA = `
local g = redis.call('GET', KEYS[1]) or '0'
if g ~= ARGV[1] then return 0 end
local base = ARGV[2] .. g
if redis.call('EXISTS', base .. ':ops:tomb') == 1 then return 0 end
local sk = base .. ':ops:set'
redis.call('DEL', sk)
for i = 5, #ARGV do redis.call('SADD', sk, ARGV[i]) end
redis.call('PEXPIRE', sk, ARGV[3])
redis.call('SET', base .. ':ops', ARGV[4], 'PX', ARGV[3])
return 1
`;

/**
 * What ingest committed. ARGV: bump, base, quiet ms, number of traces n, n trace hexes, then the
 * operation members this instance had not seen before. Marks each trace (TOMB for the quiet
 * period, assembled trace dropped); drops the catalog and marks it unless it has every member.
 */
export const NOTE_WRITTEN_LUA = `
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local g = redis.call('GET', KEYS[1]) or '0'
local base = ARGV[2] .. g
local n = tonumber(ARGV[4])
for i = 5, 4 + n do
  redis.call('SET', base .. ':w:' .. ARGV[i], 'TOMB', 'PX', ARGV[3])
  redis.call('DEL', base .. ':t:' .. ARGV[i])
end
if #ARGV > 4 + n then
  local ck = base .. ':ops'
  local sk = base .. ':ops:set'
  local known = redis.call('EXISTS', ck) == 1
  if known then
    for i = 5 + n, #ARGV do
      if redis.call('SISMEMBER', sk, ARGV[i]) == 0 then
        known = false
        break
      end
    end
  end
  if not known then
    redis.call('DEL', ck, sk)
    redis.call('SET', base .. ':ops:tomb', '1', 'PX', ARGV[3])
  end
end
return 1
`;

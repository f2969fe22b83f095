/**
 * GCRA (generic cell rate algorithm: a token bucket kept as one timestamp per bucket), the same
 * math in two places: GCRA_LUA runs it atomically in Redis for the limit shared by every instance,
 * LocalGcra runs it in this process for the fallback. Times are integer microseconds.
 *
 * A bucket allows `rate` units per second with bursts of `burst` units. Its state is the
 * theoretical arrival time (TAT); a request of `cost` units is allowed when
 *   max(TAT, now) + min(cost × interval, tolerance) − tolerance ≤ now     (interval = 1/rate, tolerance = burst × interval)
 * and then TAT = max(TAT, now) + cost × interval. A request larger than the whole burst is allowed
 * when the bucket is full and leaves it in debt, so every request can eventually pass while the
 * average rate still holds. While a bucket is in debt (TAT − tolerance > now) even a zero-cost
 * request is refused: that is "blocked", which an instance may remember and refuse locally.
 */

export interface Bucket {
  intervalUs: number; // µs per unit
  toleranceUs: number; // burst × interval
}

export interface BucketCharge {
  bucket: Bucket;
  cost: number;
}

export interface GcraDecision {
  allowed: boolean;
  waitUs: number; // until this request could pass (0 when allowed)
  blockedUs: number; // until a zero-cost request passes, after this decision
  refusedIndex: number; // index of the bucket that refused, -1 when allowed
}

/** undefined when the rate is 0 (no limit). `share` divides rate and burst (the local share). */
export function bucketFor(ratePerS: number, burst: number, share = 1): Bucket | undefined {
  if (ratePerS <= 0) return undefined;
  const rate = ratePerS / share;
  const intervalUs = 1_000_000 / rate;
  return { intervalUs, toleranceUs: Math.max(1, burst / share) * intervalUs };
}

/** One GCRA decision over several buckets: all charged, or none. Pure: returns the new TATs. */
export function decide(
  charges: readonly BucketCharge[],
  tats: readonly number[],
  nowUs: number,
): GcraDecision & { newTats: number[] } {
  let waitUs = 0;
  let refusedIndex = -1;
  const current: number[] = [];
  const next: number[] = [];
  charges.forEach(({ bucket, cost }, i) => {
    const tat = Math.max(tats[i] ?? 0, nowUs);
    const increment = Math.ceil(cost * bucket.intervalUs);
    const allowAt = tat + Math.min(increment, bucket.toleranceUs) - bucket.toleranceUs;
    if (allowAt - nowUs > waitUs) {
      waitUs = allowAt - nowUs;
      refusedIndex = i;
    }
    current.push(tat);
    next.push(tat + increment);
  });
  const allowed = refusedIndex < 0;
  const after = allowed ? next : current;
  const blockedUs = Math.max(0, ...after.map((tat, i) => tat - charges[i].bucket.toleranceUs - nowUs));
  return { allowed, waitUs, blockedUs, refusedIndex, newTats: allowed ? next : current };
}

/**
 * The in-process limiter: one TAT per bucket key. Keys whose TAT is in the past carry no state
 * (an absent key means a full bucket), so they are swept once the map grows past `maxKeys`.
 */
export class LocalGcra {
  readonly #tats = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(maxKeys = 10_000) {
    this.#maxKeys = maxKeys;
  }

  take(keys: readonly string[], charges: readonly BucketCharge[], nowUs: number): GcraDecision {
    const decision = decide(
      charges,
      keys.map((key) => this.#tats.get(key) ?? 0),
      nowUs,
    );
    if (decision.allowed) {
      keys.forEach((key, i) => {
        if (charges[i].cost > 0) this.#tats.set(key, decision.newTats[i]);
      });
      if (this.#tats.size > this.#maxKeys) this.#sweep(nowUs);
    }
    return decision;
  }

  get size(): number {
    return this.#tats.size;
  }

  #sweep(nowUs: number): void {
    for (const [key, tat] of this.#tats) if (tat <= nowUs) this.#tats.delete(key);
  }
}

/**
 * decide() in Redis, atomically, on the server's clock (instances' clocks never meet).
 * KEYS[i]: bucket i's TAT; ARGV[3i-2..3i]: interval µs, tolerance µs, cost.
 * Returns {allowed 1|0, wait µs, blocked µs, refused bucket (1-based, 0 when allowed)}.
 * Keys expire once their TAT has passed (+1 s): an absent key is a full bucket.
 */
export const GCRA_LUA = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local current, nexts = {}, {}
local wait, refused = 0, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local increment = math.ceil(cost * interval)
  local allow_at = tat + math.min(increment, tolerance) - tolerance
  if allow_at - now > wait then
    wait = allow_at - now
    refused = i
  end
  current[i] = tat
  nexts[i] = tat + increment
end
local after = current
if refused == 0 then
  after = nexts
  for i = 1, #KEYS do
    if tonumber(ARGV[3 * i]) > 0 then
      redis.call('SET', KEYS[i], string.format('%.0f', nexts[i]), 'PX', math.ceil((nexts[i] - now) / 1000) + 1000)
    end
  end
end
local blocked = 0
for i = 1, #KEYS do
  local debt = after[i] - tonumber(ARGV[3 * i - 1]) - now
  if debt > blocked then blocked = debt end
end
if refused == 0 then return {1, 0, blocked, 0} end
return {0, wait, blocked, refused}
`;

/**
 * Token and tenant attacks against a server under authenticated load (reliability catalog rows
 * 30, 31, 34; the auth issue's forged-token matrix, run while good traffic flows): alg none, HS/RS
 * confusion, expired, not yet valid, wrong audience / issuer, forged signature, tenant claim
 * tampering, X-Scope-OrgID spoofing, WebSocket upgrades with bad tokens, and a valid token of tenant
 * "mallory" reading tenant "acme"'s traces through the query API.
 *
 * Passes when every attack gets its answer (401 / 403 / 404, 200 stored as the token's tenant),
 * nothing of a refused request is stored, the rows per tenant are exactly what was acknowledged,
 * every refusal is counted in tracehouse_auth_failures_total, and the good traffic's accounting
 * is clean (0 acknowledged lost, 0 duplicates).
 */
import pg from 'pg';
import WebSocket from 'ws';
import { AUDIENCE, ISSUER, keyDir, rsaKeyPair } from '../../../test/helpers/auth.js';
import { buildRequest, realisticSpans } from '../../../test/helpers/otlp-fixtures.js';
import { spanKey } from '../../../test/helpers/otlp-load.js';
import { ATTACKER_TENANT, buildAuthAttacks, goodToken, type AuthAttack } from '../hostile/auth-forgeries.js';
import {
  drainAndAccount,
  goodTrafficFailures,
  latencyPercentileMs,
  startGoodTraffic,
  statusCounts,
} from '../hostile/good-traffic.js';
import { metricValue, startTargetServer } from '../hostile/target-server.js';
import type { FaultMode, Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const ROUNDS: Record<FaultMode, number> = { smoke: 10, full: 300 };
const VICTIM = 'acme';

interface Outcome {
  attack: AuthAttack;
  status: number;
  /** Span keys of an ingest attack's request. */
  keys: string[];
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const started = Date.now();
  const failures: string[] = [];
  const figures: Record<string, number | string> = {};
  const key = rsaKeyPair();
  const dir = keyDir();
  const server = await startTargetServer({
    JWT_PUBLIC_KEY_FILE: dir.write('public.pem', key.publicPem),
    JWT_ALGORITHMS: 'RS256',
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_CLOCK_TOLERANCE_S: '30',
  }).catch((err: unknown) => {
    dir.cleanup();
    throw err;
  });
  const victimToken = await goodToken(key, VICTIM, 'traces:write traces:read');
  const load = startGoodTraffic({ url: server.url, headers: { authorization: `Bearer ${victimToken}` } });
  const outcomes: Outcome[] = [];
  let accounting: Awaited<ReturnType<typeof drainAndAccount>> | undefined;
  try {
    while (load.acknowledgedKeys().size === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    const victimTrace = [...load.acknowledgedKeys()][0].split(':')[0];
    const control = await fetchStatus(`${server.url}/api/traces/${victimTrace}`, {
      authorization: `Bearer ${victimToken}`,
    });
    if (control !== 200) {
      failures.push(`the victim could not read its own trace (${control}): the 404 checks would prove nothing`);
    }
    const attacks = await buildAuthAttacks(key);
    const before = await server.scrape();
    const attackFrom = Date.now();
    for (let round = 0; round < ROUNDS[context.mode]; round++) {
      outcomes.push(...(await Promise.all(attacks.map((attack) => runAttack(server.url, attack, victimTrace)))));
      if (round % 50 === 0) context.log(`auth attacks: round ${round + 1} of ${ROUNDS[context.mode]}`);
    }
    const attackTo = Date.now();
    const after = await server.scrape();
    figures['attacks sent'] = outcomes.length;
    figures['attack kinds'] = attacks.length;
    figures['good p99 during attacks ms'] = latencyPercentileMs(load, 99, attackFrom, attackTo);
    figures['good p99 before ms'] = latencyPercentileMs(load, 99, 0, attackFrom);
    failures.push(...checkAnswers(outcomes));
    const refusals = outcomes.filter((o) => o.status === 401 || o.status === 403).length;
    const counted =
      metricValue(after, 'tracehouse_auth_failures_total') - metricValue(before, 'tracehouse_auth_failures_total');
    figures['auth failures counted'] = counted;
    if (counted !== refusals) {
      failures.push(`auth_failures_total moved by ${counted}, but ${refusals} requests were refused`);
    }
    accounting = await drainAndAccount(load, server.databaseUrl);
    failures.push(...(await checkRows(server.databaseUrl, outcomes, accounting.accounting.acknowledged)));
  } finally {
    load.stop();
    if (!server.alive()) failures.push(`the server died: ${server.process.stderr().slice(-500)}`);
    failures.push(...server.errorLogs().map((line) => `logged at error level: ${line}`));
    await server.stop();
    dir.cleanup();
  }
  const accounted = accounting!; // assigned unless the try block threw (and so did run)
  const goodStatuses = statusCounts(load);
  failures.push(...accounted.problems, ...goodTrafficFailures(accounted.accounting, goodStatuses));
  const statuses: Record<string, number> = { ...goodStatuses };
  for (const outcome of outcomes) statuses[String(outcome.status)] = (statuses[String(outcome.status)] ?? 0) + 1;
  const asSpecified = outcomes.filter((o) => o.status === o.attack.expected).length;
  figures['attacks answered as specified'] = `${asSpecified} of ${outcomes.length}`;
  return {
    id: scenario.id,
    title: scenario.title,
    catalogRows: scenario.catalogRows,
    accounting: accounted.accounting,
    statuses,
    figures,
    failures,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

async function runAttack(url: string, attack: AuthAttack, victimTrace: string): Promise<Outcome> {
  if (attack.target === 'read') {
    return { attack, status: await fetchStatus(`${url}/api/traces/${victimTrace}`, attack.headers), keys: [] };
  }
  if (attack.target === 'websocket') return { attack, status: await upgradeStatus(url, attack.headers), keys: [] };
  const spans = realisticSpans(5, { nowMs: Date.now() });
  const response = await fetch(`${url}/v1/traces`, {
    method: 'POST',
    headers: { ...attack.headers, 'content-type': 'application/x-protobuf' },
    body: new Uint8Array(buildRequest({ spans }).protobuf),
    signal: AbortSignal.timeout(20_000),
  }).catch(() => undefined);
  await response?.arrayBuffer();
  const keys = spans.map((s) => spanKey(s.traceId, s.spanId));
  if (
    response &&
    (response.status === 401 || response.status === 403) &&
    !/^Bearer realm="tracehouse"/.test(response.headers.get('www-authenticate') ?? '')
  ) {
    return { attack, status: -response.status, keys }; // a refusal without WWW-Authenticate: reported as wrong
  }
  return { attack, status: response?.status ?? 0, keys };
}

async function fetchStatus(url: string, headers: Record<string, string>): Promise<number> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(20_000) }).catch(() => undefined);
  await response?.arrayBuffer();
  return response?.status ?? 0;
}

/** The HTTP status of a refused WebSocket handshake, or 101 when the upgrade went through. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/traces/ws`, ['tracehouse.otlp.v1'], { headers });
  return new Promise((resolve) => {
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (request, response) => {
      request.destroy();
      resolve(response.statusCode ?? 0);
    });
    socket.once('error', () => resolve(0));
  });
}

function checkAnswers(outcomes: Outcome[]): string[] {
  const wrong = new Map<string, number[]>();
  for (const { attack, status } of outcomes) {
    if (status !== attack.expected) wrong.set(attack.id, [...(wrong.get(attack.id) ?? []), status]);
  }
  return [...wrong].map(
    ([id, statuses]) =>
      `${id}: answered ${[...new Set(statuses)].join(',')} (negative: a 401/403 without WWW-Authenticate)`,
  );
}

/** Rows per tenant are exactly what was acknowledged; nothing of a refused request is stored. */
async function checkRows(databaseUrl: string, outcomes: Outcome[], victimAcknowledged: number): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const failures: string[] = [];
    const { rows } = await client.query<{ tenant: string; n: number }>(
      'SELECT tenant, count(*)::int AS n FROM spans GROUP BY tenant',
    );
    const perTenant = Object.fromEntries(rows.map((r) => [r.tenant, r.n]));
    const spoofed = outcomes
      .filter((o) => o.attack.storedAs !== undefined && o.status === 200)
      .reduce((n, o) => n + o.keys.length, 0);
    const expected: Record<string, number> = { [VICTIM]: victimAcknowledged, [ATTACKER_TENANT]: spoofed };
    for (const tenant of new Set([...Object.keys(perTenant), ...Object.keys(expected)])) {
      if ((perTenant[tenant] ?? 0) !== (expected[tenant] ?? 0)) {
        failures.push(`tenant ${tenant}: ${perTenant[tenant] ?? 0} rows stored, expected ${expected[tenant] ?? 0}`);
      }
    }
    const refusedTraces = [
      ...new Set(outcomes.filter((o) => o.attack.expected !== 200).flatMap((o) => o.keys.map((k) => k.split(':')[0]))),
    ];
    const leaked = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM spans WHERE encode(trace_id, 'hex') = ANY($1::text[])",
      [refusedTraces],
    );
    if (leaked.rows[0].n > 0) failures.push(`${leaked.rows[0].n} rows stored from requests with refused tokens`);
    return failures;
  } finally {
    await client.end();
  }
}

const scenario: Scenario = {
  id: 'auth-attacks',
  title:
    'Token and tenant attacks (alg none, HS/RS confusion, expired, wrong aud, forged, tenant tampering, X-Scope-OrgID, cross-tenant reads) under load',
  catalogRows: [30, 31, 34],
  run,
};

export default scenario;

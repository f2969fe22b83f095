/**
 * Load tests and the throughput budget (issue 9). One command runs any set of scenarios, rounds of
 * one run each, interleaved (limit first in every round, so each result has a same-round limit):
 *
 *   npm run loadtest -- --scenarios protobuf,json --runs 1 --duration 10   # development
 *   npm run loadtest:check                                                  # budget.json, all scenarios
 *   npm run loadtest:smoke                                                  # ≤ 60 s, accounting only
 *
 * See loadtests/README.md for the scenarios, the methods and the latest numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkBudget, loadBudget } from './load/budget.js';
import { formatProfile, summarizeProfile } from './load/profile.js';
import { startDatabaseServer } from './load/environment.js';
import { DESCRIPTIONS, formatScenario, summarize, type Summary } from './load/report.js';
import { SCENARIOS, type RunResult, type RunSettings, type ScenarioName } from './load/run-result.js';
import { runScale } from './load/scale.js';
import { runIngest, runLimit, sampleCopyTemplates, type ScenarioContext } from './load/scenarios.js';
import { buildTemplates } from './load/templates.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SMOKE_SCENARIOS: ScenarioName[] = ['limit', 'protobuf', 'json', 'protobuf-gzip', 'websocket', 'mixed'];

const { values: args } = parseArgs({
  options: {
    scenarios: { type: 'string' },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string', default: '16' },
    'ws-connections': { type: 'string', default: '8' },
    'ws-window': { type: 'string', default: '2' },
    'copy-connections': { type: 'string', default: '2' },
    'copy-rows': { type: 'string', default: '8192' },
    'query-rate': { type: 'string', default: '20' },
    'paced-fraction': { type: 'string', default: '0.7' },
    check: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    results: { type: 'string' },
    budget: { type: 'string', default: path.join(HERE, 'budget.json') },
    profile: { type: 'string' },
    'server-env': { type: 'string', default: '' },
  },
});

const budget = loadBudget(args.budget);
const smoke = args.smoke;
let scenarios = (args.scenarios?.split(',') ?? (smoke ? SMOKE_SCENARIOS : [...SCENARIOS])) as ScenarioName[];
for (const s of scenarios) {
  if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
}
// Ratios need the limit; protobuf-70 and the gzip pool size need protobuf's rate in the same round.
if (!scenarios.includes('limit')) scenarios = ['limit', ...scenarios];
if (scenarios.includes('protobuf-70') && !scenarios.includes('protobuf')) scenarios.splice(1, 0, 'protobuf');
scenarios = SCENARIOS.filter((s) => scenarios.includes(s));

const settings: RunSettings = {
  warmupS: Number(args.warmup ?? (smoke ? 0.5 : budget.defaults.warmupSeconds)),
  durationS: Number(args.duration ?? (smoke ? 2 : budget.defaults.durationSeconds)),
  connections: Number(args.connections),
  wsConnections: Number(args['ws-connections']),
  wsWindow: Number(args['ws-window']),
  copyConnections: Number(args['copy-connections']),
  copyRowsPerCopy: Number(args['copy-rows']),
  queryRequestsPerS: Number(args['query-rate']),
  pacedFraction: Number(args['paced-fraction']),
  profileDir: args.profile ? path.resolve(args.profile) : undefined,
  serverEnv: parseServerEnv(args['server-env']),
};
if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });
const runs = Number(args.runs ?? (smoke ? 1 : budget.defaults.runs));
const resultsDir = args.results ?? (smoke ? undefined : path.join(HERE, 'results'));
const extraArgs = process.argv.slice(2).filter((a) => a !== '--check' && a !== '--smoke');
const script = `npm run loadtest${args.check ? ':check' : smoke ? ':smoke' : ''}`;
const command = extraArgs.length > 0 ? `${script} -- ${extraArgs.join(' ')}` : script;

function runLine(r: RunResult, limit: number | undefined): string {
  const cores = [...(r.cores ?? new Map())].map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ');
  const ratio = limit ? ` (${(r.spansPerS / limit).toFixed(2)} × limit)` : '';
  return (
    `${r.scenario} run ${r.run}: ${Math.round(r.spansPerS)} spans/s${ratio}, ${r.mbPerS.toFixed(1)} MB/s, ` +
    `p50 ${r.p50Ms.toFixed(0)} ms, p99 ${r.p99Ms.toFixed(0)} ms, rss ${((r.peakRssBytes ?? NaN) / 2 ** 20).toFixed(0)} MB, ` +
    `${r.storage ? `${r.storage.bytesPerSpan.toFixed(0)} B/span, ` : ''}cores: ${cores}; accounting ${r.accounting.ok ? 'ok' : 'FAILED'}`
  );
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  console.log(`# ${command}`);
  console.log(`# ${scenarios.join(', ')}: ${runs} run(s) of ${settings.warmupS} s warm-up + ${settings.durationS} s`);
  const db = await startDatabaseServer();
  console.log(`# ${db.description}`);
  const results: RunResult[] = [];
  const errors: string[] = [];
  try {
    const templates = buildTemplates(4);
    const copy = await sampleCopyTemplates(db, templates);
    for (let run = 1; run <= runs; run++) {
      const ctx: ScenarioContext = { db, templates, copy, settings };
      for (const scenario of scenarios) {
        let result: RunResult;
        try {
          result =
            scenario === 'limit'
              ? await runLimit(ctx, run)
              : scenario === 'scale-2'
                ? await runScale(ctx, run)
                : await runIngest(ctx, scenario, run);
        } catch (err) {
          // A run that could not complete fails the check; the other scenarios still run.
          errors.push(`${scenario} run ${run}: ${(err as Error).message.split('\n')[0]}`);
          console.log(`${scenario} run ${run}: ERROR ${(err as Error).stack ?? String(err)}`);
          continue;
        }
        if (scenario === 'protobuf') ctx.protobufSpansPerS = result.spansPerS;
        results.push(result);
        const limit = results.find((r) => r.scenario === 'limit' && r.run === run)?.spansPerS;
        console.log(runLine(result, scenario === 'limit' ? undefined : limit));
      }
    }
  } finally {
    await db.stop();
  }

  const limits = results.filter((r) => r.scenario === 'limit');
  const measured = scenarios.filter((s) => results.some((r) => r.scenario === s));
  const summaries = new Map<ScenarioName, Summary>(
    measured.map((s) => [
      s,
      summarize(
        results.filter((r) => r.scenario === s),
        limits,
      ),
    ]),
  );
  const header = (s: ScenarioName): string =>
    `# loadtest ${s} | ${new Date(startedAt).toISOString().slice(0, 10)} | ${command} | node ${process.version} | ` +
    `${db.description} | ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`;
  const settingsLine =
    `settings: ${runs} run(s) × (${settings.warmupS} s warm-up + ${settings.durationS} s measured); ` +
    `${settings.connections} HTTP connections; WebSocket ${settings.wsConnections} × ${settings.wsWindow} frames; ` +
    `COPY ${settings.copyConnections} sessions × ${settings.copyRowsPerCopy} rows; queries ${settings.queryRequestsPerS}/s` +
    Object.entries(settings.serverEnv)
      .map(([key, value]) => `; server ${key}=${value}`)
      .join('');
  if (resultsDir) {
    mkdirSync(resultsDir, { recursive: true });
    for (const s of measured) {
      const text = formatScenario(
        header(s),
        results.filter((r) => r.scenario === s),
        limits,
        settingsLine,
      );
      writeFileSync(path.join(resultsDir, `${s}.txt`), text);
    }
  }
  const checks = [
    ...errors.map((text) => ({ ok: false, text: `run did not complete: ${text}` })),
    ...checkBudget(args.check ? budget : { ...budget, scenarios: {} }, summaries),
  ];
  const summaryText = [
    `# loadtest summary | ${new Date(startedAt).toISOString().slice(0, 10)} | ${command}`,
    ...measured.map((s) => {
      const m = summaries.get(s)!;
      return `${s.padEnd(14)} ${Math.round(m.spansPerS).toString().padStart(7)} spans/s  ${m.ratioToLimit.toFixed(2)} × limit  p99 ${m.p99Ms.toFixed(0)} ms  ${DESCRIPTIONS[s]}`;
    }),
    '',
    ...checks.map((c) => `${c.ok ? 'pass' : 'FAIL'}  ${c.text}`),
  ].join('\n');
  console.log(`\n${summaryText}`);
  if (resultsDir) writeFileSync(path.join(resultsDir, 'summary.txt'), `${summaryText}\n`);
  const profiled = results.filter((r) => r.profile !== undefined);
  if (profiled.length > 0) {
    const text = profiled.flatMap((r) => [
      ...formatProfile(
        summarizeProfile(r.profile!, r.accounting.stored, r.profileSkipMs),
        `protobuf run ${r.run} (${path.basename(r.profile!)})`,
      ),
      '',
    ]);
    console.log(`\n${text.join('\n')}`);
    if (resultsDir) writeFileSync(path.join(resultsDir, 'profile.txt'), `# ${command}\n${text.join('\n')}`);
  }
  console.log(`\n# ${((Date.now() - startedAt) / 1000).toFixed(0)} s${resultsDir ? `; results in ${resultsDir}` : ''}`);
  return checks.every((c) => c.ok) ? 0 : 1;
}

process.exitCode = await main();

/** KEY=VALUE,KEY=VALUE → an environment object. */
function parseServerEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p !== '')) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--server-env: expected KEY=VALUE, got ${pair}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

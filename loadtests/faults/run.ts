/**
 * The fault suite's one command:
 *
 *   node --import tsx loadtests/faults/run.ts [--mode smoke|full] [--only id,id] [--out FILE|-] [--list]
 *
 * Finds every scenario file in loadtests/faults/scenarios/ (default export: a Scenario or an array),
 * runs the scenarios one at a time, each in its own process (run-one.ts), prints their progress,
 * and writes the report: full mode → docs/reliability.md, smoke mode → loadtests/results/faults-smoke.txt
 * (`--out -` prints it instead). Exits 1 when any scenario failed, 2 on a usage error.
 * It builds dist/ first when the server sources are newer (scenarios spawn the built server).
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureDistBuilt, REPO_ROOT } from '../../test/helpers/build-dist.js';
import { machineFacts, renderMarkdown, renderText, type RunInfo } from './report.js';
import type { ChildMessage } from './run-one.js';
import type { FaultMode, Scenario, ScenarioResult } from './scenario.js';
import { TEMPLATE_ENV } from './template-postgres.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIO_DIR = path.join(HERE, 'scenarios');
/** A scenario running longer than this is killed (with everything it started) and reported as failed. */
const TIMEOUT_MS: Record<FaultMode, number> = { smoke: 240_000, full: 45 * 60_000 };

interface Options {
  mode: FaultMode;
  only: string[] | undefined;
  out: string | undefined;
  list: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { mode: 'smoke', only: undefined, out: undefined, list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) usage(`${arg} needs a value`);
      return next;
    };
    if (arg === '--mode') {
      const mode = value();
      if (mode !== 'smoke' && mode !== 'full') usage(`--mode must be smoke or full, got '${mode}'`);
      options.mode = mode;
    } else if (arg === '--only') {
      options.only = value()
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean);
    } else if (arg === '--out') options.out = value();
    else if (arg === '--list') options.list = true;
    else usage(`unknown argument '${arg}'`);
  }
  return options;
}

function usage(problem: string): never {
  console.error(`${problem}\nusage: run.ts [--mode smoke|full] [--only id,id] [--out FILE|-] [--list]`);
  process.exit(2);
}

interface Found {
  file: string;
  scenario: Scenario;
}

async function discover(): Promise<Found[]> {
  const files = readdirSync(SCENARIO_DIR)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts') && !name.startsWith('.'))
    .sort();
  const found: Found[] = [];
  for (const name of files) {
    const file = path.join(SCENARIO_DIR, name);
    const mod = (await import(pathToFileURL(file).href)) as { default?: Scenario | Scenario[] };
    if (mod.default === undefined) continue; // a helper module next to the scenarios
    for (const scenario of [mod.default].flat()) found.push({ file, scenario });
  }
  const seen = new Set<string>();
  for (const { scenario, file } of found) {
    if (seen.has(scenario.id)) usage(`scenario id '${scenario.id}' appears twice (again in ${file})`);
    seen.add(scenario.id);
  }
  return found;
}

let current: ReturnType<typeof fork> | undefined;
/** One initialised PostgreSQL cluster that every scenario's private cluster is copied from (template-postgres.ts). */
const templateDir = mkdtempSync(path.join(os.tmpdir(), 'th-faults-template-'));
process.on('exit', () => rmSync(templateDir, { recursive: true, force: true }));

// The scenario runs in its own process group: pass Ctrl-C on to it (PostgreSQL and tracehouse stop
// on SIGINT), then give up.
process.on('SIGINT', () => {
  if (current?.pid !== undefined) {
    try {
      process.kill(-current.pid, 'SIGINT');
    } catch {
      // already gone
    }
  }
  process.exit(130);
});

/** Runs one scenario in a child process (its own process group, so a timeout ends all it started). */
function runInChild(found: Found, mode: FaultMode): Promise<ScenarioResult> {
  const { scenario, file } = found;
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const child = fork(path.join(HERE, 'run-one.ts'), [file, scenario.id, mode], {
      cwd: REPO_ROOT,
      env: { ...process.env, [TEMPLATE_ENV]: templateDir },
      execArgv: ['--import', 'tsx'],
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    current = child;
    let result: ScenarioResult | undefined;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.log(`[${scenario.id}] timed out after ${TIMEOUT_MS[mode] / 1000} s; killing its process group`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, TIMEOUT_MS[mode]);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'log') console.log(`[${scenario.id}] ${message.message}`);
      else result = message.result;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      const problem = timedOut
        ? `timed out after ${TIMEOUT_MS[mode] / 1000} s`
        : `its process exited (${signal ?? `code ${code}`}) without a result`;
      resolve(
        result ?? {
          id: scenario.id,
          title: scenario.title,
          catalogRows: scenario.catalogRows,
          statuses: {},
          figures: {},
          failures: [problem],
          durationSeconds: Math.round((Date.now() - startedAt) / 1000),
        },
      );
    });
  });
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const all = await discover();
  if (options.list) {
    for (const { scenario, file } of all) {
      console.log(`${scenario.id.padEnd(32)} rows ${scenario.catalogRows.join(',').padEnd(10)} ${path.basename(file)}`);
    }
    process.exit(0);
  }
  const unknown = (options.only ?? []).filter((id) => !all.some((f) => f.scenario.id === id));
  if (unknown.length > 0) usage(`unknown scenario id(s): ${unknown.join(', ')} (see --list)`);
  const selected = options.only ? all.filter((f) => options.only!.includes(f.scenario.id)) : all;

  const build = await ensureDistBuilt();
  if (build.built) console.log(`built dist/ in ${Math.round(build.durationMs / 1000)} s`);
  const startedAt = new Date();
  const results: ScenarioResult[] = [];
  for (const [index, found] of selected.entries()) {
    console.log(`[${found.scenario.id}] (${index + 1}/${selected.length}) ${found.scenario.title}`);
    const result = await runInChild(found, options.mode);
    const verdict = result.failures.length === 0 ? 'passed' : `FAILED (${result.failures.length})`;
    console.log(`[${found.scenario.id}] ${verdict} in ${result.durationSeconds} s`);
    results.push(result);
  }

  const run: RunInfo = {
    mode: options.mode,
    command: commandLine(options),
    startedAt,
    durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
  };
  const machine = machineFacts();
  const text = renderText(results, run, machine);
  const out =
    options.out ??
    (options.mode === 'full' ? 'docs/reliability.md' : path.join('loadtests', 'results', 'faults-smoke.txt'));
  if (out === '-') process.stdout.write(text);
  else {
    const target = path.resolve(REPO_ROOT, out);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, target.endsWith('.md') ? await renderMarkdown(results, run, machine) : text);
    process.stdout.write(`\n${text}\nreport written to ${path.relative(REPO_ROOT, target)}\n`);
  }
  process.exit(results.every((r) => r.failures.length === 0) ? 0 : 1);
}

/** The command that reproduces this run, as a reader would type it. */
function commandLine(options: Options): string {
  const script = options.mode === 'full' ? 'npm run faults' : 'npm run faults:smoke';
  const extra = [
    ...(options.only ? ['--only', options.only.join(',')] : []),
    ...(options.out ? ['--out', options.out] : []),
  ];
  return extra.length > 0 ? `${script} -- ${extra.join(' ')}` : script;
}

await main();

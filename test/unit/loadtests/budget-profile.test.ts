import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBudget, serverShare, type Budget } from '../../../loadtests/load/budget.js';
import { summarizeProfile } from '../../../loadtests/load/profile.js';
import type { Summary } from '../../../loadtests/load/report.js';
import type { ScenarioName } from '../../../loadtests/load/run-result.js';

const summary = (scenario: ScenarioName, over: Partial<Summary> = {}): Summary => ({
  scenario,
  runs: 3,
  spansPerS: 40_000,
  ratioToLimit: 0.8,
  mbPerS: 20,
  p50Ms: 100,
  p99Ms: 200,
  peakRssMb: 250,
  bytesPerSpan: 480,
  cores: new Map([
    ['server', 0.9],
    ['postgres', 1],
  ]),
  runSpansPerS: new Map([
    [1, over.spansPerS ?? 40_000],
    [2, over.spansPerS ?? 40_000],
  ]),
  runCpuUsPerSpan: new Map(),
  accountingOk: true,
  ...over,
});

/** A summary whose rounds used these CPU µs per span, by process group. */
const withCpu = (s: Summary, perRun: Record<string, number>[]): Summary => ({
  ...s,
  runCpuUsPerSpan: new Map(perRun.map((cpu, i) => [i + 1, new Map(Object.entries(cpu))])),
});

const budget: Budget = {
  defaults: { runs: 3, warmupSeconds: 3, durationSeconds: 12 },
  scenarios: {
    protobuf: { minRatioToLimit: 0.8, minSpansPerS: 40_000, maxPeakRssMb: 300, maxBytesPerSpan: 500 },
    'protobuf-gzip': { maxSlowdownVs: { scenario: 'protobuf', fraction: 0.15 } },
    'scale-2': { minPostgresToInstanceCpu: 1 },
  },
};

describe('the load test budget', () => {
  it('passes every rule a run meets exactly at its bound', () => {
    const lines = checkBudget(budget, new Map([['protobuf', summary('protobuf')]]));
    expect(lines.map((l) => l.ok)).toEqual([true, true, true, true, true]);
  });

  it('fails the one rule a run misses and names it', () => {
    const lines = checkBudget(budget, new Map([['protobuf', summary('protobuf', { ratioToLimit: 0.79 })]]));
    expect(lines.filter((l) => !l.ok).map((l) => l.text)).toEqual(['protobuf: ratio to raw COPY 0.79 ≥ 0.8']);
  });

  it("says how much server CPU per span the ratio leaves beside the run's other costs", () => {
    // Round 1: the limit took 20 µs of machine CPU per span; ÷ 0.8 = 25, minus the run's 19
    // outside the server (28 − 9) leaves 6. Round 2: 24 ÷ 0.8 − (30 − 10) = 10. Medians: 8 and 9.5.
    const limit = withCpu(summary('limit'), [{ machine: 20 }, { machine: 24 }]);
    const protobuf = withCpu(summary('protobuf', { ratioToLimit: 0.6 }), [
      { machine: 28, server: 9, postgres: 17 },
      { machine: 30, server: 10, postgres: 18 },
    ]);
    const lines = checkBudget(
      budget,
      new Map<ScenarioName, Summary>([
        ['limit', limit],
        ['protobuf', protobuf],
      ]),
    );
    expect(lines.filter((l) => !l.ok).map((l) => l.text)).toEqual([
      'protobuf: ratio to raw COPY 0.60 ≥ 0.8 (the ratio leaves the server 8.0 µs of CPU per span beside this' +
        " run's PostgreSQL, load generator and others; it used 9.5)",
    ]);
    expect(serverShare(protobuf, limit, 0.8)).toEqual({ allowedUs: 8, usedUs: 9.5 });
    expect(serverShare(protobuf, summary('limit'), 0.8)).toBeUndefined();
  });

  it('fails a fast run whose loss accounting does not hold', () => {
    const lines = checkBudget(
      budget,
      new Map([['protobuf', summary('protobuf', { spansPerS: 90_000, accountingOk: false })]]),
    );
    expect(lines.filter((l) => !l.ok).map((l) => l.text)).toEqual(['protobuf: loss accounting of all 3 runs holds']);
  });

  it('measures gzip against protobuf and scale-2 against its busiest instance', () => {
    const lines = checkBudget(
      budget,
      new Map<ScenarioName, Summary>([
        ['protobuf', summary('protobuf')],
        ['protobuf-gzip', summary('protobuf-gzip', { spansPerS: 33_000 })],
        [
          'scale-2',
          summary('scale-2', {
            cores: new Map([
              ['server-1', 0.5],
              ['server-2', 0.7],
              ['postgres', 0.6],
            ]),
          }),
        ],
      ]),
    );
    const failed = lines.filter((l) => !l.ok).map((l) => l.text);
    expect(failed).toEqual([
      'protobuf-gzip: slowdown vs protobuf 0.175 ≤ 0.15',
      'scale-2: postgres CPU ÷ busiest instance CPU 0.86 ≥ 1',
    ]);
  });
});

describe('the profile summary', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'th-profile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('charges a native call to the stage of its nearest project frame and skips startup samples', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0, columnNumber: 0 });
    const file = path.join(dir, 'CPU.1.cpuprofile');
    writeFileSync(
      file,
      JSON.stringify({
        nodes: [
          { id: 1, callFrame: frame('(root)', ''), children: [2, 5, 6] },
          { id: 2, callFrame: frame('encodeCopyRows', 'file:///app/dist/storage/copy-text.js'), children: [3] },
          { id: 3, callFrame: frame('toString', 'node:buffer'), children: [4] },
          { id: 4, callFrame: frame('hexSlice', ''), children: [] },
          { id: 5, callFrame: frame('readSpan', 'file:///app/dist/decode/protobuf-span.js'), children: [] },
          { id: 6, callFrame: frame('(garbage collector)', ''), children: [] },
        ],
        // 1 ms of startup (skipped), then 3 ms hexSlice under copy-text, 2 ms readSpan, 1 ms GC.
        samples: [5, 4, 4, 4, 5, 5, 6],
        timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000],
        startTime: 0,
        endTime: 7000,
      }),
    );
    const result = summarizeProfile(file, 1000, 1.5);
    expect(result.stages.map((s) => [s.stage, s.usPerSpan])).toEqual([
      ['COPY encoding', 3],
      ['decode', 2],
      ['GC', 1],
    ]);
    expect(result.stages[0].top[0].name).toBe('hexSlice (native)');
  });
});

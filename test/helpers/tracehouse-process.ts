/**
 * Runs the real `tracehouse serve` (bin/tracehouse.js → dist/) as a child process on 127.0.0.1 and
 * a free port, for tests that signal or kill the process. Its stdout (pino JSON) is parsed into
 * `logs`; stderr is kept as text. The environment is only what the caller passes plus PATH and
 * HOME, so a DATABASE_URL of the test runner never leaks in. stop() SIGKILLs a process that is
 * still running and waits for its exit: call it in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './build-dist.js';
import { freePort } from './private-postgres.js';

export interface LogLine {
  level: number;
  time: number;
  msg?: string;
  [key: string]: unknown;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

export interface TracehouseProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Parsed stdout lines, in order; non-JSON lines are kept as { msg } with level 0. */
  readonly logs: LogLine[];
  readonly stderr: () => string;
  readonly exited: Promise<ProcessExit>;
  /** Polls GET /ready until 200; fails early if the process exits. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Resolves with the exit, or undefined when it did not happen within timeoutMs. */
  waitExit(timeoutMs: number): Promise<ProcessExit | undefined>;
  /** SIGKILL if still running, then wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

export async function spawnTracehouse(env: Record<string, string>): Promise<TracehouseProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'tracehouse.js'), 'serve'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ level: 0, time: Date.now(), msg: line });
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 1_000_000) stderr += chunk;
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const url = `http://127.0.0.1:${port}`;

  const waitExit = async (timeoutMs: number): Promise<ProcessExit | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    url,
    port,
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitExit,
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (hasExited) {
          throw new Error(`tracehouse exited before it was ready:\n${formatOutput(logs, stderr)}`);
        }
        const status = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) }).then(
          async (res) => {
            await res.arrayBuffer();
            return res.status;
          },
          () => 0,
        );
        if (status === 200) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`tracehouse was not ready within ${timeoutMs} ms:\n${formatOutput(logs, stderr)}`);
    },
    async stop() {
      if (!hasExited) child.kill('SIGKILL');
      await exited;
    },
  };
}

function formatOutput(logs: LogLine[], stderr: string): string {
  const tail = logs.slice(-20).map((line) => JSON.stringify(line));
  return [...tail, stderr.slice(-4000)].join('\n');
}

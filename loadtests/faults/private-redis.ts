/**
 * A redis-server private to one fault scenario (the shared Redis on 6379 is never touched): a child
 * process on a free loopback port, no persistence. It can be stopped and started again on the same
 * port (Redis down), or frozen with SIGSTOP (Redis slow: the kernel still accepts connections and
 * queues commands, nothing answers) and thawed with SIGCONT.
 *
 * Why it holds state: the current child process, so that start/stop/pause/resume act on it and
 * destroy() can always end it (thawing it first, a stopped process cannot handle SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from '../../test/helpers/private-postgres.js';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  readonly paused: boolean;
  /** Starts redis-server (again) on the same port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** SIGTERM, then waits for the exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGSTOP: connections are still accepted by the kernel, commands are never answered. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stops it for good. Idempotent. */
  destroy(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let paused = false;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    child = proc;
    void exited.then(() => {
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (child !== proc) throw new Error(`redis-server on port ${port} exited at start: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    if (paused) resume();
    proc.kill('SIGTERM');
    await exited;
  };

  const resume = (): void => {
    if (child && paused) child.kill('SIGCONT');
    paused = false;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined;
    },
    get paused() {
      return paused;
    },
    start,
    stop,
    pause() {
      if (!child || paused) return;
      child.kill('SIGSTOP');
      paused = true;
    },
    resume,
    destroy: stop,
  };
}

/** True when something on the port answers PING with +PONG within a second. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString('latin1').startsWith('+PONG')));
  });
}

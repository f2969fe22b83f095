/**
 * A PostgreSQL server private to one test file, for tests that must stop, crash or restart the
 * database (the shared test server must never be stopped). It is the embedded PostgreSQL of
 * server/storage/embedded.ts on a free port, in a temporary directory the `postgres` OS user can
 * reach (we run as root in CI). stop() / start() keep the data directory; destroy() removes it.
 */
import { mkdtemp, chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../server/storage/embedded.js';

export interface PrivatePostgres {
  readonly port: number;
  readonly dataDir: string;
  /** The `tracehouse` database on this server. */
  readonly connectionString: string;
  readonly running: boolean;
  /** Starts the server again on the same port and data directory. */
  start(): Promise<void>;
  /** Fast shutdown, or a crash-like immediate one (recovery runs on the next start). */
  stop(options?: { immediate?: boolean }): Promise<void>;
  /** Stops the server and deletes its directory. Idempotent. */
  destroy(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  return startPrivatePostgresIn(await makePrivateRoot());
}

/** A fresh temporary directory the `postgres` OS user can enter; the data directory goes in `data`. */
export async function makePrivateRoot(): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'th-pg-'));
  await chmod(root, 0o755); // mkdtemp makes it 0700: the postgres user must be able to enter it
  return root;
}

/**
 * Starts the embedded PostgreSQL on `<root>/data` (initialised there unless it already holds a
 * cluster) on a free port; destroy() deletes `root`, also when the first start fails.
 */
export async function startPrivatePostgresIn(root: string): Promise<PrivatePostgres> {
  const dataDir = path.join(root, 'data');
  const port = await freePort();
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  let handle: EmbeddedPostgresHandle | undefined;
  let connectionString = '';

  const start = async (): Promise<void> => {
    if (handle) return;
    const started = await startEmbeddedPostgres({ dataDir, port, log });
    handle = started;
    connectionString = started.connectionString;
  };
  const stop = async (options?: { immediate?: boolean }): Promise<void> => {
    const current = handle;
    handle = undefined;
    await current?.stop(options);
  };

  try {
    await start();
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    dataDir,
    get connectionString() {
      return connectionString;
    },
    get running() {
      return handle !== undefined;
    },
    start,
    stop,
    destroy: async () => {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

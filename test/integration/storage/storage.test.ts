import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import { createStorage } from '../../../server/storage/index.js';
import { isDataError, isRetryableStorageError } from '../../../server/storage/retryable.js';
import { useTestDatabase } from '../../helpers/db.js';
import { silentLog } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

describe('storage', () => {
  it('answers ping, and pings fail with a retryable error when PostgreSQL is unreachable', async () => {
    const storage = await newStorage();
    await expect(storage.ping()).resolves.toBeUndefined();

    const nowhere = await createStorage(
      {
        ...DEFAULTS.storage,
        poolSize: 2,
        connectTimeoutMs: 1000,
        connectionString: 'postgres://postgres@127.0.0.1:1/none',
      },
      silentLog,
    );
    try {
      const err = await nowhere.ping().catch((e: unknown) => e);
      expect(isRetryableStorageError(err)).toBe(true);
    } finally {
      await nowhere.stop();
    }
  });

  it('runs maintenance on one instance at a time', async () => {
    const [a, b] = await Promise.all([newStorage(), newStorage()]);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = a.withMaintenanceLock(async () => {
      await held;
      return 'a';
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await b.withMaintenanceLock(async () => 'b')).toEqual({ ran: false });
    expect(await a.withMaintenanceLock(async () => 'a again')).toEqual({ ran: false });
    release();
    expect(await first).toEqual({ ran: true, result: 'a' });
    expect(await b.withMaintenanceLock(async () => 'b')).toEqual({ ran: true, result: 'b' });
  });

  it('stops idempotently', async () => {
    const storage = await newStorage();
    await storage.ping();
    await Promise.all([storage.stop(), storage.stop()]);
    await storage.stop();
  });
});

describe('error classification', () => {
  const cases: Array<[string, unknown, boolean, boolean]> = [
    ['admin shutdown 57P01', { code: '57P01' }, true, false],
    ['cannot connect now 57P03', { code: '57P03' }, true, false],
    ['connection failure 08006', { code: '08006' }, true, false],
    ['too many connections 53300', { code: '53300' }, true, false],
    ['disk full 53100', { code: '53100' }, true, false],
    ['serialization failure 40001', { code: '40001' }, true, false],
    ['deadlock 40P01', { code: '40P01' }, true, false],
    ['lock not available 55P03', { code: '55P03' }, true, false],
    ['statement timeout 57014', { code: '57014' }, true, false],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true, false],
    ['pg connection terminated', new Error('Connection terminated unexpectedly'), true, false],
    ['pool connect timeout', new Error('timeout exceeded when trying to connect'), true, false],
    ['wrapped cause', new Error('write failed', { cause: { code: '57P01' } }), true, false],
    ['AggregateError', new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), true, false],
    ['invalid json 22P02', { code: '22P02' }, false, true],
    ['unique violation 23505', { code: '23505' }, false, true],
    ['syntax error 42601', { code: '42601' }, false, false],
    ['undefined table 42P01', { code: '42P01' }, false, false],
    ['plain bug', new TypeError('x is undefined'), false, false],
    ['not an error', 'nope', false, false],
  ];
  it.each(cases)('%s', (_name, err, retryable, data) => {
    expect(isRetryableStorageError(err)).toBe(retryable);
    expect(isDataError(err)).toBe(data);
  });
});

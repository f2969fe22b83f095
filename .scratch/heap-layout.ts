import { pino } from 'pino';
import pg from 'pg';
import { DEFAULTS } from '../server/config.js';
import { decodeExportRequest } from '../server/decode/index.js';
import { AttributeSharing } from '../server/decode/attribute-sharing.js';
import { createStorage } from '../server/storage/index.js';
import { migrate } from '../server/storage/migrate.js';
import { buildTemplates } from '../loadtests/load/templates.js';

const admin = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS heaplayout WITH (FORCE)');
await admin.query('CREATE DATABASE heaplayout');
const url = 'postgresql://postgres@127.0.0.1:5432/heaplayout';
await migrate(url, pino({ level: 'warn' }));
const storage = await createStorage({ ...DEFAULTS.storage, poolSize: 2, connectionString: url }, pino({ level: 'warn' }));
const now = Date.now();
await storage.partitions.ensureRange(new Date(now - 86_400_000), new Date(now + 2 * 86_400_000));
const templates = buildTemplates(4);
const sharing = new AttributeSharing();
const options = { limits: DEFAULTS.decode, window: { minStartUnixNano: BigInt(now - 86_400_000) * 1_000_000n, maxStartUnixNano: BigInt(now + 3_600_000) * 1_000_000n }, sharing };
for (let r = 1; r <= 200; r++) {
  const body = templates[r % 4].protobuf.patched(0x55, r);
  const rows = decodeExportRequest(body, 'protobuf', options).rows;
  await storage.writer.write([{ tenant: 'default', rows }]);
}
await storage.stop();
await admin.end();
console.log('done');

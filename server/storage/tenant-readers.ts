/**
 * Provisions a PostgreSQL login role that reads only one tenant's rows (row-level security of
 * migrations/000002), for a per-tenant Grafana PostgreSQL datasource. The work is the SQL function
 * tracehouse_create_tenant_reader(), so an administrator can do the same from psql.
 */
import pg from 'pg';

export const CREATE_TENANT_READER = 'SELECT tracehouse_create_tenant_reader($1, $2, $3)';

export interface TenantReader {
  role: string;
  tenant: string;
  password: string;
}

const MAX_ROLE_NAME_BYTES = 63; // PostgreSQL NAMEDATALEN − 1: longer names are silently truncated

/** Creates or updates the role; the connection must be allowed to create roles. */
export async function createTenantReader(connectionString: string, reader: TenantReader): Promise<void> {
  if (Buffer.byteLength(reader.role) > MAX_ROLE_NAME_BYTES) {
    throw new Error(`role name longer than ${MAX_ROLE_NAME_BYTES} bytes: ${reader.role}`);
  }
  const client = new pg.Client({ connectionString, application_name: 'tracehouse-tenant-role' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(CREATE_TENANT_READER, [reader.role, reader.tenant, reader.password]);
  } finally {
    await client.end();
  }
}

/** The default role name for a tenant: tracehouse_tenant_<tenant>, lower-cased, [a-z0-9_] only. */
export function defaultReaderRole(tenant: string): string {
  return `tracehouse_tenant_${tenant.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, MAX_ROLE_NAME_BYTES);
}

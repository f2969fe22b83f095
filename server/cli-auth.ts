/**
 * The auth commands of the CLI:
 *   tracehouse token --tenant T [--scope "traces:write traces:read"] [--ttl 1h] [--kid K] [--subject S]
 *     prints a token signed with JWT_PRIVATE_KEY_FILE or JWT_SECRET (local use and the quick start)
 *   tracehouse tenant-role <tenant> [--role NAME] [--password-file FILE]
 *     creates a PostgreSQL login role that reads only that tenant's rows, and prints a Grafana
 *     datasource for it
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { mintToken, parseTtl } from './auth/mint.js';
import { isScope, type Scope } from './auth/scopes.js';
import { tenantProblem } from './auth/tenant.js';
import { ConfigError, type Config } from './config.js';
import { resolveDatabase } from './service.js';
import { migrate } from './storage/migrate.js';
import { createTenantReader, defaultReaderRole } from './storage/tenant-readers.js';

export const AUTH_USAGE = `  token --tenant T [--scope "traces:write traces:read"] [--ttl 1h] [--kid K] [--subject S]
            print a JWT signed with JWT_PRIVATE_KEY_FILE or JWT_SECRET (for local use)
  tenant-role <tenant> [--role NAME] [--password-file FILE]
            create a PostgreSQL login role that reads only <tenant>'s rows (for Grafana)`;

const TOKEN_HELP = `usage: tracehouse token --tenant T [--scope "traces:write traces:read"] [--ttl 1h] [--kid K] [--subject S]

Prints a JWT for local use (e.g. OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer $(npx tracehouse token --tenant acme)").
Signed with JWT_PRIVATE_KEY_FILE, or else JWT_SECRET, with JWT_ISSUER, JWT_AUDIENCE and JWT_TENANT_CLAIM.
  --scope   space-separated: traces:write, traces:read, admin (default "traces:write traces:read")
  --ttl     3600, 30m, 1h, 7d (default 1h)
  --kid     key id for the header (when the server reads a JWKS)
  --subject the "sub" claim`;

const TENANT_ROLE_HELP = `usage: tracehouse tenant-role <tenant> [--role NAME] [--password-file FILE]

Creates (or updates the password of) a PostgreSQL login role that reads only <tenant>'s rows, and
prints a Grafana datasource for it. Connects to DATABASE_URL (or the embedded PostgreSQL) as a role
that may create roles.
  --role           role name (default tracehouse_tenant_<tenant>)
  --password-file  read the password from this file (default: a random one, printed)`;

function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

export async function runTokenCommand(args: string[], config: Config): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(`${TOKEN_HELP}\n`);
    return 0;
  }
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: 'string' },
      scope: { type: 'string', default: 'traces:write traces:read' },
      ttl: { type: 'string', default: '1h' },
      kid: { type: 'string' },
      subject: { type: 'string' },
    },
    strict: true,
  });
  if (values.tenant === undefined) throw new ConfigError('token: --tenant is required');
  const scopes = values.scope.split(' ').filter((item) => item !== '');
  const unknown = scopes.filter((scope) => !isScope(scope));
  if (unknown.length > 0) {
    throw new ConfigError(`token: unknown scope(s) ${unknown.join(', ')}; use traces:write, traces:read, admin`);
  }
  const token = await mintToken(config.auth, {
    tenant: values.tenant,
    scopes: scopes as Scope[],
    ttlS: parseTtl(values.ttl),
    kid: values.kid,
    subject: values.subject,
  });
  process.stdout.write(`${token}\n`);
  return 0;
}

export async function runTenantRoleCommand(args: string[], config: Config, log: Logger): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(`${TENANT_ROLE_HELP}\n`);
    return 0;
  }
  const { values, positionals } = parseArgs({
    args,
    options: { role: { type: 'string' }, 'password-file': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [tenant] = positionals;
  if (tenant === undefined || positionals.length !== 1) throw new ConfigError('tenant-role: give exactly one tenant');
  const problem = tenantProblem(tenant);
  if (problem !== undefined) throw new ConfigError(`tenant-role: the tenant ${problem}`);
  const role = values.role ?? defaultReaderRole(tenant);
  const passwordFile = values['password-file'];
  const password = passwordFile ? readFileSync(passwordFile, 'utf8').trim() : randomBytes(24).toString('base64url');

  const database = await resolveDatabase(config, log);
  try {
    await migrate(database.connectionString, log.child({ stage: 'migrate' }));
    await createTenantReader(database.connectionString, { role, tenant, password });
    process.stdout.write(describeReader(database.connectionString, role, tenant, password));
    return 0;
  } finally {
    await database.stop();
  }
}

/** The role, and a Grafana provisioning file for a PostgreSQL datasource that logs in as it. */
function describeReader(connectionString: string, role: string, tenant: string, password: string): string {
  const url = new URL(connectionString);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  const sslmode = url.searchParams.get('sslmode') ?? (loopback ? 'disable' : 'require');
  return `role:     ${role}
tenant:   ${tenant}
password: ${password}

# Grafana provisioning (e.g. provisioning/datasources/tracehouse-${tenant}.yaml):
apiVersion: 1
datasources:
  - name: tracehouse (${tenant})
    type: grafana-postgresql-datasource   # 'postgres' before Grafana 10.3
    access: proxy
    url: ${url.hostname}:${url.port || 5432}
    user: ${role}
    jsonData:
      database: ${decodeURIComponent(url.pathname.slice(1)) || 'postgres'}
      sslmode: ${sslmode}
    secureJsonData:
      password: ${password}
`;
}

/**
 * The `tracehouse` command. `serve` is what `npm start` runs; `migrate` applies the migrations to
 * DATABASE_URL (or the embedded PostgreSQL) and exits; the data lifecycle commands (backup, restore,
 * verify, partitions, migrate --check) live in cli-ops.ts. Returns the process exit code.
 */
import { AUTH_USAGE, runTenantRoleCommand, runTokenCommand } from './cli-auth.js';
import { CANARY_USAGE, runCanaryCommand } from './cli-canary.js';
import { OPS_COMMANDS, OPS_USAGE, runOpsCommand } from './cli-ops.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './ops/logger.js';
import { resolveDatabase, startService } from './service.js';
import { migrate } from './storage/migrate.js';

const USAGE = `usage: tracehouse <command>

commands:
  serve     run the server (OTLP/HTTP ingest, probes and metrics on PORT, default 4318)
  migrate   apply database migrations to DATABASE_URL (or the embedded PostgreSQL) and exit
${AUTH_USAGE}
${OPS_USAGE}
${CANARY_USAGE}
  help      show this text

\`tracehouse <command> --help\` describes a command's options

configuration comes from environment variables; see README.md`;

export async function runCli(argv: string[]): Promise<number> {
  const [command = 'help'] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!['serve', 'migrate', 'token', 'tenant-role', 'canary', ...OPS_COMMANDS].includes(command)) {
    process.stderr.write(`tracehouse: unknown command '${command}'\n${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`tracehouse: invalid configuration: ${err.message}\n`);
    return 2;
  }
  if ((OPS_COMMANDS as readonly string[]).includes(command) || (command === 'migrate' && argv.length > 1)) {
    return runOpsCommand(command, argv.slice(1), config);
  }
  const log = createLogger(config.server.logLevel);
  if (command === 'token' || command === 'tenant-role' || command === 'canary') {
    try {
      if (command === 'canary') return await runCanaryCommand(argv.slice(1), log);
      return await (command === 'token'
        ? runTokenCommand(argv.slice(1), config)
        : runTenantRoleCommand(argv.slice(1), config, log));
    } catch (err) {
      const usageError = err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
      if (!usageError) throw err;
      process.stderr.write(`tracehouse ${command}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  return command === 'serve' ? serve(config, log) : runMigrate(config, log);
}

async function runMigrate(
  config: ReturnType<typeof loadConfig>,
  log: ReturnType<typeof createLogger>,
): Promise<number> {
  const database = await resolveDatabase(config, log);
  try {
    await migrate(database.connectionString, log.child({ stage: 'migrate' }));
    return 0;
  } catch (err) {
    log.error({ err }, 'migration failed');
    return 1;
  } finally {
    await database.stop();
  }
}

async function serve(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>): Promise<number> {
  let service;
  try {
    service = await startService(config, log);
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    return 1;
  }
  const running = service;
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'shutting down');
      running.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}

/**
 * Fault injection inside a private PostgreSQL, as its superuser (never the shared server):
 *
 * - terminateActiveCopy: a loop that runs inside PostgreSQL (1 ms polls of pg_stat_activity, so
 *   the client round trip does not widen the window) finds a tracehouse writer whose statement is a
 *   COPY still streaming rows, and pg_terminate_backend()s it: a backend killed mid-COPY.
 * - commits stalled after their commit record: synchronous_standby_names names a standby that
 *   does not exist, so a COMMIT is flushed to the local WAL, becomes visible, and then waits
 *   (wait_event SyncRep) for an acknowledgement that never comes. terminateCommitWaiters() then
 *   ends those backends: the transaction HAS committed, but the client only sees its connection
 *   break — the ambiguous commit of catalog row 10, made deterministic.
 * - read-only: default_transaction_read_only for the database, with the sessions that already
 *   exist terminated so that their replacements pick it up (as after a failover to a replica).
 */
import pg from 'pg';

export async function withAdmin<T>(connectionString: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString, application_name: 'tracehouse-faults' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SET default_transaction_read_only = off'); // the admin session must write, even now
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const KILL_COPY = `
CREATE OR REPLACE FUNCTION pg_temp.th_kill_copy(timeout_ms int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  victim int;
  statement text;
  deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_ms / 1000.0);
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT pid, query INTO victim, statement FROM pg_stat_activity
     WHERE application_name = 'tracehouse' AND state = 'active' AND query LIKE 'COPY %' AND pid <> pg_backend_pid()
     LIMIT 1;
    IF victim IS NOT NULL AND pg_terminate_backend(victim) THEN
      RETURN victim || ' ' || left(statement, 60);
    END IF;
    IF clock_timestamp() > deadline THEN RETURN NULL; END IF;
    PERFORM pg_sleep(0.001);
  END LOOP;
END $$`;

/** Terminates one tracehouse backend in the middle of a COPY; undefined when none was seen in time. */
export async function terminateActiveCopy(connectionString: string, timeoutMs: number): Promise<string | undefined> {
  return withAdmin(connectionString, async (client) => {
    await client.query(KILL_COPY);
    const { rows } = await client.query<{ killed: string | null }>('SELECT pg_temp.th_kill_copy($1) AS killed', [
      timeoutMs,
    ]);
    return rows[0].killed ?? undefined;
  });
}

const MISSING_STANDBY = 'th_faults_missing_standby';

/** On: every commit waits for a standby that does not exist (after its local flush). Off: back to normal. */
export async function stallCommitsAfterFlush(connectionString: string, on: boolean): Promise<void> {
  await withAdmin(connectionString, async (client) => {
    await client.query(
      on
        ? `ALTER SYSTEM SET synchronous_standby_names = '${MISSING_STANDBY}'`
        : 'ALTER SYSTEM RESET synchronous_standby_names',
    );
    await client.query('SELECT pg_reload_conf()');
  });
}

/**
 * Waits (up to timeoutMs) for tracehouse backends stuck after their commit record, terminates
 * them, and returns their pids. Their transactions are committed; their clients see an error.
 */
export async function terminateCommitWaiters(connectionString: string, timeoutMs: number): Promise<number[]> {
  return withAdmin(connectionString, async (client) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ pid: number }>(
        `SELECT pid, pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
          WHERE application_name = 'tracehouse' AND wait_event = 'SyncRep'`,
      );
      if (rows.length > 0 || Date.now() > deadline) return rows.map((row) => row.pid);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

/** Makes the database read-only (or writable again) for new sessions, and ends tracehouse's existing ones. */
export async function setReadOnly(connectionString: string, database: string, on: boolean): Promise<void> {
  await withAdmin(connectionString, async (client) => {
    const name = pg.escapeIdentifier(database);
    await client.query(
      on
        ? `ALTER DATABASE ${name} SET default_transaction_read_only = on`
        : `ALTER DATABASE ${name} RESET default_transaction_read_only`,
    );
    // A session keeps the default it started with: end them all, their replacements get the new one.
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name LIKE 'tracehouse%' AND application_name <> 'tracehouse-faults'`,
    );
  });
}

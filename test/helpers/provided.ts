/** What test/helpers/global-setup.ts provides to every test file (read with `inject`). */
declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin connection string of the test PostgreSQL (TEST_DATABASE_URL or the local default). */
    thAdminUrl: string;
    /** A migrated template database; useTestDatabase() clones it per test file. */
    thTemplateDatabase: string;
    /** Prefix for the per-file databases of this run, so a crashed run's leftovers can be found. */
    thTestDatabasePrefix: string;
  }
}

export {};

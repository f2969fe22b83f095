-- 000002: per-tenant read access in PostgreSQL, for direct SQL users such as Grafana's PostgreSQL
-- datasource (DESIGN decision 7: every query is tenant-scoped).
--
-- Forward-only: never edit this file once released.
--
-- Row-level security on the tenant tables: a role sees only the rows of the tenant that
-- tenant_readers maps it to, keyed by current_user. Deliberately NOT keyed by a custom setting such
-- as current_setting('tracehouse.tenant'): any session may SET such a setting, and a Grafana user
-- who writes raw SQL could then read every tenant. current_user can only become a role the login
-- role is a member of, and tenant_readers can only be written by its owner.
--
-- tracehouse owns these tables, and a table's owner bypasses RLS (there is no FORCE ROW LEVEL
-- SECURITY), so ingest, maintenance and pg_dump run as the owner are unaffected. Any other role sees
-- only its mapped tenant's rows, and none when it has no mapping.
--
-- This migration creates no role (running it needs no CREATEROLE). Roles come from
-- tracehouse_create_tenant_reader() below, or the `tracehouse tenant-role` command that calls it.

CREATE TABLE tenant_readers (
  role_name  name        PRIMARY KEY,
  tenant     text        NOT NULL CHECK (
                           octet_length(tenant) BETWEEN 1 AND 150
                           AND tenant ~ '^[A-Za-z0-9!_.*''()-]+$'
                           AND tenant NOT IN ('.', '..')),
  created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tenant_readers IS
  'Which tenant each read-only PostgreSQL role may see (row-level security on spans and traces). '
  'Written by tracehouse_create_tenant_reader(); a role reads only its own row.';
COMMENT ON COLUMN tenant_readers.role_name IS 'A login role (e.g. a Grafana datasource user).';
COMMENT ON COLUMN tenant_readers.tenant IS 'The only tenant whose rows that role sees.';

ALTER TABLE tenant_readers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_readers_own_row ON tenant_readers FOR SELECT
  USING (role_name = current_user);

-- The subquery is uncorrelated, so it runs once per query (an InitPlan) and `tenant = $1` can use
-- the (tenant, …) indexes and primary keys.
ALTER TABLE spans ENABLE ROW LEVEL SECURITY;
CREATE POLICY spans_tenant_read ON spans FOR SELECT
  USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));

ALTER TABLE traces ENABLE ROW LEVEL SECURITY;
CREATE POLICY traces_tenant_read ON traces FOR SELECT
  USING (tenant = (SELECT r.tenant FROM tenant_readers r WHERE r.role_name = current_user));

-- Creates (or updates) a login role that reads one tenant's rows:
--   SELECT tracehouse_create_tenant_reader('grafana_acme', 'acme', 'a-long-random-password');
-- The role is a member of the NOLOGIN group role tracehouse_reader (created on first use), which
-- holds SELECT on every table of this schema that has row-level security, and is read-only by
-- default. Idempotent: run it again to change the password, and after an upgrade that adds tenant
-- tables. It refuses an existing role that is not a reader of that same tenant (a role never
-- silently changes tenant: drop it and create another). Needs CREATEROLE (and ADMIN on tracehouse_reader), so run it as an
-- administrator; a NULL password leaves the password unchanged (or unset).
CREATE FUNCTION tracehouse_create_tenant_reader(reader name, reader_tenant text, reader_password text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  protected regclass;
BEGIN
  IF reader_tenant IS NULL OR octet_length(reader_tenant) NOT BETWEEN 1 AND 150
     OR reader_tenant !~ '^[A-Za-z0-9!_.*''()-]+$' OR reader_tenant IN ('.', '..') THEN
    RAISE EXCEPTION 'invalid tenant name %', quote_literal(left(reader_tenant, 40)) USING ERRCODE = '22023';
  END IF;
  IF reader IS NULL OR reader = 'tracehouse_reader' OR reader LIKE 'pg\_%' THEN
    RAISE EXCEPTION 'invalid reader role name %', quote_literal(reader) USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tracehouse_reader') THEN
    BEGIN
      CREATE ROLE tracehouse_reader NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created concurrently
    END;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tracehouse_reader', current_schema());
  FOR protected IN
    SELECT c.oid::regclass
      FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace
       AND c.relkind IN ('r', 'p')
       AND c.relrowsecurity
       AND NOT c.relispartition
  LOOP
    EXECUTE format('GRANT SELECT ON %s TO tracehouse_reader', protected);
  END LOOP;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = reader) THEN
    IF NOT EXISTS (SELECT FROM tenant_readers WHERE role_name = reader) THEN
      RAISE EXCEPTION 'role % exists and is not a tenant reader: choose another name', quote_ident(reader)
        USING ERRCODE = '42710';
    END IF;
    IF NOT EXISTS (SELECT FROM tenant_readers WHERE role_name = reader AND tenant = reader_tenant) THEN
      RAISE EXCEPTION 'role % already reads another tenant: choose another name', quote_ident(reader)
        USING ERRCODE = '42710';
    END IF;
    IF reader_password IS NOT NULL THEN
      EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', reader, reader_password);
    END IF;
  ELSE
    EXECUTE format('CREATE ROLE %I WITH LOGIN PASSWORD %L', reader, reader_password);
  END IF;
  EXECUTE format('GRANT tracehouse_reader TO %I', reader);
  EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', reader);
  INSERT INTO tenant_readers (role_name, tenant) VALUES (reader, reader_tenant)
  ON CONFLICT (role_name) DO NOTHING;
END
$$;

REVOKE EXECUTE ON FUNCTION tracehouse_create_tenant_reader(name, text, text) FROM PUBLIC;

COMMENT ON FUNCTION tracehouse_create_tenant_reader(name, text, text) IS
  'Creates or updates a login role that reads only one tenant''s rows (see migrations/000002).';

#!/bin/sh
# Runs once, when the PostgreSQL volume is initialised (the postgres image runs
# /docker-entrypoint-initdb.d/* then): creates the login role of Grafana's PostgreSQL datasource
# (deploy/grafana/provisioning/datasources/datasources.yml). The role
#   - may read every table the owner ($POSTGRES_USER, tracehouse) creates later, through default
#     privileges: tracehouse creates its tables at its first start, after this script;
#   - bypasses row-level security: it is the operators' datasource over every tenant (per-tenant
#     datasources use `tracehouse tenant-role`, README "Grafana per tenant");
#   - runs every transaction read-only, with a statement timeout.
# The password comes from a secret file and reaches psql through its environment, never argv.
set -eu

role="${GRAFANA_DB_USER:-grafana_reader}"
password_file="${GRAFANA_DB_PASSWORD_FILE:-/run/secrets/grafana_db_password}"
GRAFANA_DB_PASSWORD="$(cat "$password_file")"
export GRAFANA_DB_PASSWORD

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=role="$role" --set=owner="$POSTGRES_USER" --set=db="$POSTGRES_DB" <<'SQL'
\getenv password GRAFANA_DB_PASSWORD
CREATE ROLE :"role" LOGIN BYPASSRLS PASSWORD :'password';
ALTER ROLE :"role" SET default_transaction_read_only = on;
ALTER ROLE :"role" SET statement_timeout = '60s';
GRANT CONNECT ON DATABASE :"db" TO :"role";
GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"role";
SQL

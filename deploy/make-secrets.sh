#!/bin/sh
# Creates the secret files docker-compose.prod.yml reads (default folder: deploy/secrets/, which git
# ignores), each only if it does not exist yet:
#   postgres_password, database_url     the tracehouse role of the compose PostgreSQL
#   redis_password, redis_url           Redis
#   grafana_admin_password              Grafana's `admin` user
#   grafana_db_password                 the read-only role grafana_reader
#   jwt_private_key.pem (kept here, never mounted) and jwt_public_key.pem (the server's)
#   grafana_query_token                 a traces:read token for tenant $GRAFANA_TENANT (default
#                                       `default`), 1 year, signed with the private key (needs
#                                       `npm ci` for bin/tracehouse.js; else minted later)
#   canary_token                        a traces:write + traces:read token for tenant $CANARY_TENANT
#                                       (default `canary`), 1 year, for `tracehouse canary`
#   tls.crt, tls.key                    a self-signed certificate for $TLS_NAME (default localhost):
#                                       replace with a real one
# Files are mode 0644 inside a 0700 folder: the containers' users (tracehouse 10001, postgres 999,
# grafana 472) must read them through the bind mounts; other host users cannot enter the folder.
set -eu

dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 0700 "$dir"
umask 022

random() { openssl rand -hex 24; }
write() { # name value: writes the file unless it exists
  if [ -e "$dir/$1" ]; then echo "kept    $dir/$1"; return; fi
  printf '%s' "$2" > "$dir/$1"
  echo "created $dir/$1"
}
value() { cat "$dir/$1"; }

write postgres_password "$(random)"
write database_url "postgres://tracehouse:$(value postgres_password)@postgres:5432/tracehouse"
write redis_password "$(random)"
write redis_url "redis://:$(value redis_password)@redis:6379/0"
write grafana_admin_password "$(random)"
write grafana_db_password "$(random)"

if [ ! -e "$dir/jwt_private_key.pem" ]; then
  (umask 077 && openssl genpkey -algorithm ed25519 -out "$dir/jwt_private_key.pem")
  echo "created $dir/jwt_private_key.pem"
fi
if [ ! -e "$dir/jwt_public_key.pem" ]; then
  openssl pkey -in "$dir/jwt_private_key.pem" -pubout -out "$dir/jwt_public_key.pem"
  echo "created $dir/jwt_public_key.pem"
fi

if [ ! -e "$dir/tls.crt" ] || [ ! -e "$dir/tls.key" ]; then
  name="${TLS_NAME:-localhost}"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
  echo "created $dir/tls.crt, $dir/tls.key (self-signed for $name: replace with a real certificate)"
fi

if [ ! -e "$dir/grafana_query_token" ]; then
  cli="$(dirname "$0")/../bin/tracehouse.js"
  if token=$(JWT_PRIVATE_KEY_FILE="$dir/jwt_private_key.pem" node "$cli" token \
    --tenant "${GRAFANA_TENANT:-default}" --scope traces:read --ttl 365d 2>/dev/null); then
    write grafana_query_token "$token"
  else
    echo "NOT created $dir/grafana_query_token: run \`npm ci\`, then this script again" >&2
  fi
fi
if [ ! -e "$dir/canary_token" ]; then
  cli="$(dirname "$0")/../bin/tracehouse.js"
  if token=$(JWT_PRIVATE_KEY_FILE="$dir/jwt_private_key.pem" node "$cli" token \
    --tenant "${CANARY_TENANT:-canary}" --scope "traces:write traces:read" --ttl 365d 2>/dev/null); then
    write canary_token "$token"
  else
    echo "NOT created $dir/canary_token: run \`npm ci\`, then this script again" >&2
  fi
fi
chmod 0644 "$dir"/* 2>/dev/null || true
chmod 0600 "$dir/jwt_private_key.pem"

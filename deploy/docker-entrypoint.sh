#!/bin/sh
# Entry point of the tracehouse image (under tini): for each secret variable below, VAR_FILE=/path
# sets VAR to that file's contents (trailing newlines dropped), the Docker secrets convention, so
# that passwords live in secret files and never in docker-compose.prod.yml or `docker inspect`.
# Setting both VAR and VAR_FILE is an error. Then runs the command (default: tracehouse serve).
set -eu

for var in DATABASE_URL REDIS_URL JWT_SECRET; do
  eval "file=\${${var}_FILE:-}"
  [ -n "$file" ] || continue
  eval "current=\${${var}:-}"
  if [ -n "$current" ]; then
    echo "docker-entrypoint: both $var and ${var}_FILE are set; set only one" >&2
    exit 2
  fi
  if [ ! -r "$file" ]; then
    echo "docker-entrypoint: ${var}_FILE=$file is not a readable file" >&2
    exit 2
  fi
  value=$(cat "$file")
  export "$var=$value"
  unset "${var}_FILE"
done

exec "$@"

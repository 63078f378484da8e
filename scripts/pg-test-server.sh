#!/usr/bin/env bash
# A throwaway PostgreSQL for the gated tests (docs/postgres.md): Debian's `postgresql` package, a cluster made by
# initdb in a temp dir, run as an unprivileged user (the `postgres` user when started as root) and listening on
# 127.0.0.1 only. Prints the URL to set as LATCHKEY_TEST_PG_URL:
#   export LATCHKEY_TEST_PG_URL=$(scripts/pg-test-server.sh)
#   scripts/pg-test-server.sh stop
#   scripts/pg-test-server.sh halt     stops the server, keeping its data (an outage)
#   scripts/pg-test-server.sh resume   starts it again on its data
# PG_TEST_DIR (default /tmp/latchkey-pg-test) and PG_TEST_PORT (default 54329) choose where: a test that stops
# its database uses its own, so the shared one is not disturbed.
set -euo pipefail
dir=${PG_TEST_DIR:-/tmp/latchkey-pg-test}
port=${PG_TEST_PORT:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
as_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
}
# A failure says why on stderr (the server's log), so a test that could not start one can tell.
run() {
  as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; return 1; }
}
case "${1:-start}" in
  stop) stop; exit 0 ;;
  halt) as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; exit 0 ;;
  resume) run; exit 0 ;;
esac
stop
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_user "$bin/initdb" -D "$dir/data" -U latchkey --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
  { tail -20 "$dir/initdb.log" >&2; exit 1; }
run
echo "postgres://latchkey@127.0.0.1:$port/postgres"

#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster: initdb in a temp dir, a unix socket in
# that dir (no TCP), PG* variables exported for the command, everything removed afterwards.
# PostgreSQL refuses to run as root, so as root the cluster runs as the 'postgres' user.
#   scripts/with-postgres.sh go test ./...
set -euo pipefail

bindir=${CAIRN_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir=$(pg_config --bindir)
  else
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: no PostgreSQL server binaries (initdb) found; install them: apt-get install postgresql" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/cairn-pg.XXXXXX)
runas=()
dbuser=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  chown postgres: "$dir"
  runas=(runuser -u postgres --)
  dbuser=postgres
fi

cleanup() {
  "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${runas[@]}" "$bindir/initdb" -D "$dir/data" -U "$dbuser" --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
# fsync off and a little more memory: this cluster is thrown away, and tests want speed.
"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
  -o "-k $dir -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB -c maintenance_work_mem=512MB" \
  start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }

export PGHOST=$dir PGPORT=5432 PGUSER=$dbuser PGDATABASE=postgres
unset DATABASE_URL PGPASSWORD PGSERVICE
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $PGHOST" >&2
"$@"

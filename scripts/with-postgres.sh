#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster: initdb in a temp dir, a unix socket in
# that dir (no TCP), PG* variables exported for the command, everything removed afterwards.
# PostgreSQL refuses to run as root, so as root the cluster runs as the 'postgres' user.
#   scripts/with-postgres.sh go test ./...
# Opt-in, for benchmarks that drive other programs the way their users connect them:
#   CAIRN_PG_TCP=1      also listen on 127.0.0.1, on a free port (PGPORT says which; trust auth)
#   CAIRN_PG_OPTIONS    more server options, e.g. "-c shared_preload_libraries=pg_stat_statements"
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
port=5432 listen=
if [ "${CAIRN_PG_TCP:-}" = 1 ]; then
  # A random port that nothing answers on: other clusters (another engineer's bench) may be up.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  listen=127.0.0.1
fi
# fsync off and a little more memory: this cluster is thrown away, and tests want speed.
"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
  -o "-k $dir -p $port -c listen_addresses=$listen -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB -c maintenance_work_mem=512MB ${CAIRN_PG_OPTIONS:-}" \
  start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }

export PGHOST=$dir PGPORT=$port PGUSER=$dbuser PGDATABASE=postgres
unset DATABASE_URL PGPASSWORD PGSERVICE
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $PGHOST${listen:+ and $listen:$port}" >&2
"$@"

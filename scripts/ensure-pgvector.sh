#!/usr/bin/env bash
# Installs the pgvector extension for the PostgreSQL whose pg_config is given (PG_CONFIG or the
# newest under /usr/lib/postgresql), unless it is already there. Tries the distribution package
# first; where none exists (Debian bookworm), builds the package source of the next Debian release
# from the mirror this machine's apt sources already name.
set -euo pipefail

log() { echo "ensure-pgvector: $*" >&2; }

if [ -z "${PG_CONFIG:-}" ]; then
  PG_CONFIG=$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "${PG_CONFIG:-}" ] || [ ! -x "$PG_CONFIG" ]; then
  log "no pg_config found; install the PostgreSQL server: apt-get install postgresql"
  exit 1
fi
sharedir=$("$PG_CONFIG" --sharedir)
if [ -f "$sharedir/extension/vector.control" ]; then
  exit 0
fi
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "pgvector is missing and installing it needs root (or sudo)"; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# A fresh machine has no package lists, and install then finds nothing: update first.
$SUDO apt-get update -qq >&2 || log "apt-get update failed; trying with the lists there are"
if $SUDO apt-get install -y -qq "postgresql-$major-pgvector" >&2 2>/dev/null; then
  log "installed postgresql-$major-pgvector"
  exit 0
fi

log "no postgresql-$major-pgvector package; building pgvector from the next Debian release's source"
$SUDO apt-get install -y -qq "postgresql-server-dev-$major" build-essential dpkg-dev >&2

# The mirror comes from this machine's own apt configuration, never from this file.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ {print $2; exit}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  log "cannot find a Debian mirror in /etc/apt/sources.list*; install pgvector for PostgreSQL $major by hand"
  exit 1
fi
suite=${PGVECTOR_SUITE:-trixie}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -f "$keyring" ]; then
  echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$work/sources.list"
else
  echo "deb-src $mirror $suite main" >"$work/sources.list"
fi
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
$SUDO apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && $SUDO apt-get "${apt_opts[@]}" source -qq pgvector >&2)
src=$(ls -d "$work"/pgvector-*/ | head -n 1)
$SUDO make -s -C "$src" PG_CONFIG="$PG_CONFIG" >&2
$SUDO make -s -C "$src" PG_CONFIG="$PG_CONFIG" install >&2
if [ ! -f "$sharedir/extension/vector.control" ]; then
  log "pgvector build finished but $sharedir/extension/vector.control is missing"
  exit 1
fi
log "built and installed pgvector from $suite source"

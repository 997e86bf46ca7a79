#!/usr/bin/env bash
# Installs anvil 1.7.1 (a native Linux x64 binary published on npm) into tools/anvil/node_modules.
# Idempotent: does nothing when the pinned version is already there. The chain tests look for
# tools/anvil/node_modules/.bin/anvil (or $ANVIL_BIN) and fail with a pointer to this script otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tools/anvil"
bin="$dir/node_modules/.bin/anvil"
want="1.7.1"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$want"; then
  echo "anvil $want already installed: $bin"
  exit 0
fi

command -v npm >/dev/null || { echo "npm is required to install anvil" >&2; exit 1; }
# --no-save keeps package.json as written; --ignore-scripts because the platform package is the binary itself.
(cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --no-save)
"$bin" --version
echo "anvil installed: $bin"

#!/usr/bin/env bash
# Lets @xmtp/node-bindings' prebuilt linux-x64-gnu module (linked against glibc 2.38) load on
# an older glibc. The module needs only two symbols that are new in 2.38, the C23 variants
# __isoc23_strtol and __isoc23_strtoul; they behave like strtol/strtoul except for accepting a
# "0b" prefix, which the library never parses. So we:
#   1. build a tiny shared library defining both as forwarders to strtol/strtoul,
#   2. unversion the two symbol references and add the shim as NEEDED (found via $ORIGIN),
#   3. mark the module's GLIBC_2.38 version requirement weak so ld.so does not refuse it.
# Usage: glibc-shim.sh NODE_MODULES_DIR   (idempotent; needs gcc, patchelf, python3)
set -euo pipefail
root=${1:?usage: glibc-shim.sh NODE_MODULES_DIR}
here=$(cd "$(dirname "$0")" && pwd)
shim_name=libherald_isoc23.so

find "$root" -path '*@xmtp/node-bindings/dist/bindings_node.linux-x64-gnu.node' | while read -r module; do
  dir=$(dirname "$module")
  if [ -f "$dir/$shim_name" ]; then
    echo "glibc-shim: already applied to $module"
    continue
  fi
  if ! grep -q 'GLIBC_2\.38' "$module"; then
    echo "glibc-shim: $module needs no shim"
    continue
  fi
  src=$(mktemp --suffix=.c)
  cat > "$src" <<'C'
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **end, int base) { return strtol(s, end, base); }
unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return strtoul(s, end, base); }
C
  gcc -shared -fPIC -O2 -o "$dir/$shim_name.tmp" "$src"
  rm -f "$src"
  # Debian 12's patchelf (0.14) performs a single operation per invocation.
  patchelf --clear-symbol-version __isoc23_strtol "$module"
  patchelf --clear-symbol-version __isoc23_strtoul "$module"
  patchelf --add-needed "$shim_name" "$module"
  patchelf --set-rpath '$ORIGIN' "$module"
  python3 "$here/weaken-glibc.py" "$module" 2.38
  mv "$dir/$shim_name.tmp" "$dir/$shim_name"
  echo "glibc-shim: patched $module"
done

#!/usr/bin/env bash
# Installs the pinned official XMTP SDK (@xmtp/node-sdk 6.0.0) and the official content-type
# codecs (@xmtp/content-type-markdown 1.0.0, @xmtp/content-type-transaction-reference 2.0.2,
# @xmtp/content-type-reply 2.0.3 with @xmtp/content-type-text 2.0.2 for a reply's inner text)
# for the conformance tests, the reference `standardwebhooks` package (the webhook tests verify
# signatures with it), `puppeteer-core` (the browser tests drive Debian's /usr/bin/chromium with
# it; puppeteer-core never downloads a browser) and,
# only where the platform's glibc is older than 2.38, makes its prebuilt native binding load.
# Idempotent: reinstalls only when node_modules is missing or older than package-lock.json.
# Needs node + npm; on old-glibc hosts also gcc, python3 and patchelf (installed via apt if missing).
set -euo pipefail
cd "$(dirname "$0")"

marker=node_modules/.package-lock.json
if [ ! -f "$marker" ] || [ package-lock.json -nt "$marker" ]; then
  echo "interop: npm ci (pinned @xmtp/node-sdk)"
  npm ci --no-audit --no-fund --loglevel=error
fi

glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -n "$glibc" ] && [ "$(printf '%s\n2.38\n' "$glibc" | sort -V | head -n1)" != "2.38" ]; then
  echo "interop: glibc $glibc < 2.38, applying the binding shim"
  if ! command -v patchelf >/dev/null; then
    apt-get update -qq && apt-get install -y -qq patchelf
  fi
  ./glibc-shim.sh node_modules
fi

node -e "import('@xmtp/node-sdk').then(m => { if (typeof m.Client !== 'function') process.exit(1); console.log('interop: @xmtp/node-sdk loads') })"
node -e "Promise.all([import('@xmtp/content-type-markdown'), import('@xmtp/content-type-transaction-reference'), import('@xmtp/content-type-reply'), import('@xmtp/content-type-text')]).then(([m, t, r, x]) => { if (typeof m.MarkdownCodec !== 'function' || typeof t.TransactionReferenceCodec !== 'function' || typeof r.ReplyCodec !== 'function' || typeof x.TextCodec !== 'function') process.exit(1); console.log('interop: content-type codecs load') })"
node -e "import('standardwebhooks').then(m => { if (typeof m.Webhook !== 'function') process.exit(1); console.log('interop: standardwebhooks loads') })"
node -e "import('puppeteer-core').then(m => { if (typeof m.default.launch !== 'function') process.exit(1); console.log('interop: puppeteer-core loads') })"

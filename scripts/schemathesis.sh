#!/usr/bin/env bash
# Generated-input test of the REST API against openapi.yaml (schemathesis 4.x from PyPI).
#
# Starts `herald serve` on a fresh SQLite database with its embedded XMTP node (free loopback
# ports, a temporary data folder), creates a tenant through the admin API, then runs every
# operation of openapi.yaml with the tenant key and the admin token (each operation gets the
# credential its `security` names), stateful links included. Checks: no 5xx, documented status
# codes, responses matching their schema. Prints the number of generated requests and exits
# non-zero on any failure or when fewer than ST_MIN_REQUESTS (default 5000) were sent.
#
# Knobs: ST_EXAMPLES (cases per operation and phase, default 160), ST_SEED, ST_MIN_REQUESTS,
# ST_SPEC (default openapi.yaml), ST_HERALD (a built binary; default: cargo build of this tree), ST_KEEP (keep the temp folder).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SCHEMATHESIS_VENV:-$HOME/.cache/herald/schemathesis}
version=4.32.5
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$version"
fi

# Not HERALD_*: herald reads every HERALD_ variable as configuration.
herald=${ST_HERALD:-}
if [[ -z "$herald" ]]; then
    cargo build -q -p herald --bin herald
    herald="${CARGO_TARGET_DIR:-target}/debug/herald"
fi

work=$(mktemp -d)
server=""
cleanup() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    if [[ -n "${ST_KEEP:-}" ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
node_port=$(free_port)
base="http://127.0.0.1:$api_port"
admin="hadm_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

# Limits that would turn generated traffic into 429s are off; quotas keep their defaults.
HERALD_DATA_DIR="$work/data" \
HERALD_LISTEN="127.0.0.1:$api_port" \
HERALD_XMTP_EMBEDDED_LISTEN="127.0.0.1:$node_port" \
HERALD_ADMIN_TOKEN="$admin" \
HERALD_HTTP_RATE_LIMIT_PER_SECOND=0 \
HERALD_SELFSERVICE_PUBLIC_REQUESTS_PER_MINUTE=0 \
HERALD_LOG_FILTER="${ST_LOG_FILTER:-warn}" \
    "$herald" serve >"$work/serve.log" 2>&1 &
server=$!

# python3 rather than curl: CI installs python3 (schemathesis needs it) and nothing else here.
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base/healthz" 2>/dev/null; }
for _ in $(seq 1 300); do
    if up; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/serve.log" >&2; echo "schemathesis: herald exited" >&2; exit 1; fi
    sleep 0.2
done
up || { echo "schemathesis: herald did not come up" >&2; exit 1; }

key=$(python3 - "$base" "$admin" <<'PY'
import json, sys, urllib.request
base, admin = sys.argv[1], sys.argv[2]
request = urllib.request.Request(
    base + "/v1/tenants",
    data=json.dumps({"name": "schemathesis"}).encode(),
    headers={"authorization": "Bearer " + admin, "content-type": "application/json"},
)
print(json.load(urllib.request.urlopen(request))["api_key"])
PY
)

cat >"$work/schemathesis.toml" <<TOML
[auth.openapi.api_key]
bearer = "$key"
[auth.openapi.admin_token]
bearer = "$admin"
TOML

spec=$(realpath "${ST_SPEC:-openapi.yaml}")
report="$work/report.ndjson"
status=0
# From the temp folder, so schemathesis keeps its cache there.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$spec" \
    --url "$base" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance \
    --max-examples "${ST_EXAMPLES:-160}" \
    --seed "${ST_SEED:-20261205}" \
    --workers 2 \
    --suppress-health-check all \
    --report ndjson --report-ndjson-path "$report" \
    --output-truncate true) || status=$?

count=$(python3 - "$report" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    event = json.loads(line)
    for kind, body in event.items():
        if kind == "ScenarioFinished":
            n += len(body.get("recorder", {}).get("interactions", {}))
print(n)
PY
)
echo "schemathesis: $count generated requests against openapi.yaml"
if ((status != 0)); then
    echo "schemathesis: failures (exit $status); server log: last lines follow" >&2
    tail -n 30 "$work/serve.log" >&2
    exit "$status"
fi
if ((count < ${ST_MIN_REQUESTS:-5000})); then
    echo "schemathesis: fewer than ${ST_MIN_REQUESTS:-5000} requests" >&2
    exit 1
fi

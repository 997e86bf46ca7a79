# herald developer commands. Each target is a thin wrapper over cargo; see README.md.

CARGO ?= cargo
PG := scripts/with-postgres.sh

.PHONY: run test test-sqlite test-pg bench openapi openapi-check fmt lint migrate build

## Run herald on the embedded SQLite default (data/ in this folder).
run:
	$(CARGO) run -- serve

## The whole suite: every workspace crate on SQLite, then the service tests on a throwaway Postgres.
test: test-sqlite test-pg

test-sqlite:
	$(CARGO) test --workspace

test-pg:
	PG_FSYNC=off $(PG) $(CARGO) test -p herald --test it

## Throughput/latency of POST announcements and 10k fan-out time, on a throwaway Postgres.
bench:
	$(PG) $(CARGO) bench -p herald --bench api

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

# tandem: `make demo` runs the main job, `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
STAMPS   := .tandem/stamps
CARGO    ?= cargo
export TANDEM_PYTHON := $(abspath $(PY))
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Redis 8.6 built by scripts/setup-redis8.sh; the queue tests run again against it.
REDIS8   := $(abspath .cache/redis-8.6.3/redis-server)
QUEUE_PY_TESTS := python/tests/test_consume.py python/tests/test_consume_metrics.py

.PHONY: help setup setup-system setup-redis8 setup-python setup-rust setup-go test test-rust test-python test-go test-redis8 lint demo demo-process bench bench-gateway clean

help:
	@echo "make demo    run the main job: the reference payment gateway (sets itself up)"
	@echo "make test    run every test and linter (sets itself up)"
	@echo "make bench   run the benchmarks and record them in bench/results/"
	@echo "make demo-process     the process transport demo (pool and scripts)"
	@echo "make bench-gateway    the gateway's p50/p99 with Python healthy/slow/down"

## ---- set-up (idempotent) ------------------------------------------------------------------

setup: setup-system setup-redis8 setup-python setup-rust setup-go

setup-system:
	@bash scripts/setup-system.sh

setup-redis8:
	@bash scripts/setup-redis8.sh >/dev/null

$(STAMPS):
	@mkdir -p $(STAMPS)

$(STAMPS)/python: python/pyproject.toml | $(STAMPS)
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e 'python[dev]'
	@touch $@

setup-python: $(STAMPS)/python

setup-rust:
	@$(CARGO) build -q --workspace --all-features --all-targets

setup-go:
	@cd interop/go && go mod download && go build ./...

## ---- test ---------------------------------------------------------------------------------

test: setup lint test-rust test-python test-go test-redis8
	@echo "make test: all green"

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -q --workspace --all-targets --all-features -- -D warnings
	@for f in process plugin grpc queue metrics otel; do $(CARGO) check -q -p tandem --no-default-features --features $$f || exit 1; done
	$(VENV)/bin/ruff check python $(wildcard examples bench deploy)
	$(VENV)/bin/ruff format --check python $(wildcard examples bench deploy)
	cd python && ../$(VENV)/bin/mypy
	$(PY) deploy/check.py

test-rust:
	$(CARGO) test -q --workspace --all-features

test-python:
	$(VENV)/bin/pytest -q python/tests

# The queue tests again, against Redis 8.6 (XACKDEL, ACKED trimming, XREADGROUP CLAIM, XADD IDMP);
# test-rust and test-python ran them against the apt Redis 7.0. TANDEM_SKIP_REDIS8=1 skips.
test-redis8:
ifneq ($(TANDEM_SKIP_REDIS8),1)
	TANDEM_REDIS_SERVER=$(REDIS8) $(CARGO) test -q -p tandem --all-features --test queue
	TANDEM_REDIS_SERVER=$(REDIS8) $(CARGO) test -q -p tandem-cli --all-features --test transports redis
	TANDEM_REDIS_SERVER=$(REDIS8) $(VENV)/bin/pytest -q $(QUEUE_PY_TESTS)
endif

test-go:
	cd interop/go && go vet ./... && go test -count=1 ./...

## ---- demo and benchmarks --------------------------------------------------------------------

demo: setup
	@bash scripts/demo.sh

demo-process: setup
	@bash scripts/demo-process.sh

bench: setup
	@bash scripts/bench.sh

bench-gateway: setup
	@bash scripts/bench-gateway.sh

clean:
	rm -rf $(VENV) .tandem target

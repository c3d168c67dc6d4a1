# norris: `make demo` and `make test` work on a fresh machine; they install and start what they
# need (see tests/local/world.sh) and stop what they started.
SHELL := /bin/bash
WORLD := bash tests/local/world.sh
CARGO ?= cargo

.PHONY: help demo demo-inner test test-all lint rust-test py-test up down clean

help:
	@echo "make demo   run the main job locally (starts and stops the local world)"
	@echo "make test   every check and test (starts and stops the local world)"
	@echo "make up     start the local world (moto, MariaDB, PostgreSQL) and leave it running"
	@echo "make down   stop what 'make up' started"

demo:
	$(WORLD) run -- $(MAKE) --no-print-directory demo-inner

# Inside the local world: the control plane (the norris binary) against a MariaDB source with
# writers, a local cluster (moto EMR record + Livy stand-in) and real Spark.
demo-inner:
	$(CARGO) build -q --locked -p norris-cli
	.venv/bin/python tests/local/demo/demo.py

test:
	$(WORLD) run -- $(MAKE) --no-print-directory test-all

# Inside the local world (its environment set by world.sh).
test-all: lint rust-test py-test

PY_DIRS := livy-jobs tests/local

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings
	.venv/bin/ruff format --check $(PY_DIRS)
	.venv/bin/ruff check $(PY_DIRS)

py-test:
	.venv/bin/pytest -q livy-jobs tests/local/livy_standin

rust-test:
	$(CARGO) test --workspace --all-features --locked

up:
	$(WORLD) up

down:
	$(WORLD) down

clean: down
	rm -rf target .venv

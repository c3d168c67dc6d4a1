# norris: `make demo` and `make test` work on a fresh machine; they install and start what they
# need (see tests/local/world.sh) and stop what they started.
SHELL := /bin/bash
WORLD := bash tests/local/world.sh
CARGO ?= cargo

.PHONY: help demo demo-inner test test-all lint rust-test py-test infra-check package deploy sim soak bench up down clean

help:
	@echo "make demo   run the main job locally (starts and stops the local world)"
	@echo "make test   every check and test (starts and stops the local world)"
	@echo "make up     start the local world (moto, MariaDB, PostgreSQL) and leave it running"
	@echo "make down   stop what 'make up' started"
	@echo "make sim     the deterministic simulator: SEEDS seeds x DAYS virtual days, every strategy (SEED, JOBS, CLUSTERS, FAULTS, SPOT_BAND or SPOT_PER_MONTH)"
	@echo "make soak    10,000 seeds x 1 virtual day of norris's strategy under the harsh fault mix"
	@echo "make bench   benchmarks: scheduler tick cost and DynamoDB requests per tick, Lambda binary size/start/memory"
	@echo "make package  the four Lambda zips at target/lambda/<function>/bootstrap.zip"
	@echo "make deploy   package, then deploy every deployment of infra/deployments.json (DEPLOYMENTS=name... for some)"

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
test-all: lint rust-test py-test infra-check

PY_DIRS := livy-jobs tests/local

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings
	.venv/bin/ruff format --check $(PY_DIRS)
	.venv/bin/ruff check $(PY_DIRS)

py-test:
	.venv/bin/pytest -q livy-jobs tests/local/livy_standin tests/local/cluster_supervisor/tests

# The deployment's gates: CDK unit tests, offline synth with cdk-nag, cfn-lint, checkov.
infra-check:
	bash infra/check.sh

rust-test:
	$(CARGO) test --workspace --all-features --locked

SEED ?= 1
SEEDS ?= 20
DAYS ?= 7
JOBS ?= 10
CLUSTERS ?= 2
# FAULTS: harsh (finds bugs) or realistic (for comparing figures). SPOT_BAND: per cent of spot
# instances reclaimed per month (5, 10, 15, 20); without it, SPOT_PER_MONTH cluster-ending losses
# per cluster per 30 days (30: the harsh test rate).
FAULTS ?= harsh
SPOT_BAND ?=
SPOT_PER_MONTH ?= 30
SPOT = $(if $(SPOT_BAND),--spot-band $(SPOT_BAND),--spot-per-month $(SPOT_PER_MONTH))
# Every strategy on each seed, seeds on every core; the aggregate per strategy as JSON and the
# first seed's plots in target/sim.
sim:
	$(CARGO) run -q --release --locked -p norris-cli -- sim --seed $(SEED) --seeds $(SEEDS) --days $(DAYS) \
	  --jobs $(JOBS) --clusters $(CLUSTERS) --faults $(FAULTS) $(SPOT) \
	  --out target/sim/report.json --html target/sim/report.html

# The long soak: 10,000 seeds x 1 virtual day, norris's strategy on the grouped ledger, harsh faults; the per-seed lines
# in target/sim/soak.txt, the aggregate in target/sim/soak.json.
soak:
	mkdir -p target/sim
	$(CARGO) run -q --release --locked -p norris-cli -- sim --seed 0 --seeds 10000 --days 1 --jobs 3 \
	  --clusters $(CLUSTERS) --norris-only --out target/sim/soak.json > target/sim/soak.txt; \
	  status=$$?; tail -n 20 target/sim/soak.txt; exit $$status

# Benchmarks: the scheduler tick (CPU, DynamoDB requests, network wait) and the four Lambda release
# binaries (size, start to first event, peak memory). They print figures and assert nothing on time.
bench:
	$(CARGO) build --release --locked -p extraction-scheduler -p cluster-health-watcher -p rotation-handler -p job-migrator
	$(CARGO) run --release --locked -p norris-bench
	$(CARGO) run --release --locked -p norris-bench -- cost

package:
	bash infra/package.sh

deploy:
	bash infra/deploy.sh $(DEPLOYMENTS)

up:
	$(WORLD) up

down:
	$(WORLD) down

clean: down
	rm -rf target .venv

# Lindungi: `make run` starts the whole system on this machine; `make test` runs every test tier.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .cache/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install infra run test unit integration e2e chaos lint bench down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e ".[dev]"
	@touch $@

## Kafka (KRaft, JVM) and FerretDB on 127.0.0.1, cached under .cache/ (idempotent).
infra:
	@bash deploy/local/infra.sh up

## The whole system: Kafka, the database and all five services; Ctrl-C stops everything.
run: install infra
	@$(PY) -m deploy.local.run

## Every tier against the real broker and database (started here unless given by the environment).
test: install
	@$(PY) -m pytest tests/unit tests/integration tests/e2e tests/chaos

unit: install
	@$(PY) -m pytest tests/unit

integration: install
	@$(PY) -m pytest tests/integration

e2e: install
	@$(PY) -m pytest tests/e2e

## Faults under load, full profile (kill -9, a broker restart, the database away 30 s) on its own
## Kafka and database; writes docs/reliability.md. `make test` runs the short profile.
chaos: install
	@LINDUNGI_CHAOS=full $(PY) -m pytest tests/chaos -s

lint: install
	@$(VENV)/bin/ruff check shared services tests deploy bench
	@$(VENV)/bin/ruff format --check shared services tests deploy bench
	@$(VENV)/bin/mypy

## Figures and ratios on the real parts; `make bench ONLY=casework` runs one module.
bench: install infra
	@$(PY) -m bench $(ONLY)

down:
	@bash deploy/local/infra.sh down

clean: down
	rm -rf .cache

# Lindungi: `make run` starts the whole system on this machine; `make test` runs every test tier.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .cache/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install infra run demo test unit integration e2e fuzz chaos browser browser-tests screenshots messages lint bench down clean

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

## A week of Lindungi in a few minutes: the whole system on an accelerated clock (SPEED simulated
## seconds a second; 2880: an hour in 1.25 s), `lindungi demo` narrating on it, then the system
## stays up with the data to explore until Ctrl-C. Stop `make run` first.
SPEED ?= 2880
demo: install infra
	@$(PY) -m deploy.local.run --demo --speed $(SPEED)

## Every tier against the real broker and database (started here unless given by the environment).
test: install browser
	@$(PY) -m pytest tests/unit tests/integration tests/e2e tests/browser tests/fuzz tests/chaos

unit: install
	@$(PY) -m pytest tests/unit

integration: install
	@$(PY) -m pytest tests/integration

e2e: install
	@$(PY) -m pytest tests/e2e

## Debian's Chromium for the browser tests (installed as root when missing; no browser is ever
## downloaded by a tool) and axe-core from npm (`npm ci` into git-ignored tests/browser/node_modules).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium (apt-get)"; \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	      || { echo "could not install chromium with apt-get; install it and rerun" >&2; exit 1; }; \
	  else echo "$(CHROMIUM) is missing: run 'apt-get install chromium' as root" >&2; exit 1; fi; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing after apt-get" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "npm is missing (needed for axe-core)" >&2; exit 1; }
	@test tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json \
	  || (cd tests/browser && npm ci --no-audit --no-fund --silent)

browser-tests: install browser
	@$(PY) -m pytest tests/browser

## PNGs of the console's main pages in both languages, into docs/console/ (see docs/console.md).
screenshots: install infra browser
	@$(PY) -m tests.browser.screenshots

## Extract the console's strings and update both catalogs (then translate the new Indonesian ones).
messages: install
	@$(VENV)/bin/pybabel extract -F services/console/babel.cfg -k N_ --no-location --sort-output \
	  --omit-header -o services/console/translations/messages.pot .
	@$(VENV)/bin/pybabel update -i services/console/translations/messages.pot \
	  -d services/console/translations --width 110 --no-fuzzy-matching

## Schemathesis against every service as every kind of caller, with more examples (`make test`
## runs a short pass).
fuzz: install
	@LINDUNGI_FUZZ_FULL=1 $(PY) -m pytest tests/fuzz -s
## Faults under load, full profile (kill -9, a broker restart, the database away 30 s) on its own
## Kafka and database; writes docs/reliability.md. `make test` runs the short profile.
chaos: install
	@LINDUNGI_CHAOS=full $(PY) -m pytest tests/chaos -s

lint: install
	@$(VENV)/bin/ruff check shared services tests deploy bench
	@$(VENV)/bin/ruff format --check shared services tests deploy bench
	@$(VENV)/bin/mypy

## Figures and ratios on the real parts; `make bench ONLY=casework` runs one module.
## bench.national seeds a national year first (SEED_SCALE=0.01 for a small one; docs/performance.md).
## Sizes of the others (short by default): BENCH_TIMERS / BENCH_TIMERS_DUE (escalation, 10,000 / 1,000),
## BENCH_EVACUEES (repatriation, 10,000), BENCH_IMPORT_ROWS (imports, 2,000); full sizes in docs/performance.md.
SEED_SCALE ?= 1
bench: install infra
	@LINDUNGI_SEED_SCALE=$(SEED_SCALE) $(PY) -m bench $(ONLY)

down:
	@bash deploy/local/infra.sh down

clean: down
	rm -rf .cache

# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: soak install demo test test-deps test-unit test-integration test-faults up down status bench clean

install: $(VENV)/.installed $(VENV)/.compiled console/web/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The compiled core (compiled/: Rust, PyO3, built by maturin from PyPI, crates from crates.io). Needs cargo; on a
# machine without one, Debian's is installed (as root).
$(VENV)/.compiled: compiled/Cargo.toml compiled/Cargo.lock compiled/pyproject.toml $(wildcard compiled/src/*.rs) | $(VENV)/.installed
	command -v cargo >/dev/null 2>&1 || [ -x "$$HOME/.cargo/bin/cargo" ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo) || (echo "the compiled core needs Rust's cargo (rustup or Debian's cargo)" >&2; exit 1)
	PATH="$$PATH:$$HOME/.cargo/bin" $(BIN)/pip install --quiet ./compiled
	touch $@

# The console's browser libraries (Leaflet, the world-atlas map, topojson-client) from the npm registry, pinned by
# console/web/package-lock.json; served by the console itself (no CDN).
console/web/node_modules/.installed: console/web/package.json console/web/package-lock.json
	command -v npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm) || (echo "the console needs Node.js's npm" >&2; exit 1)
	cd console/web && npm ci --no-audit --no-fund --silent
	touch $@

demo: install
	$(BIN)/liaison demo

# System tools the tests need: iptables (tests/faults/test_network_faults.py cuts a broker off the network);
# Debian's chromium and chromium-driver (tests/integration/test_console_browser.py drives the console headless).
test-deps:
	command -v iptables >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables)
	[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# The fault suite (kills, outages, network cuts, fuzzing: ~20 min more on 2 cores) runs with `make test-faults`;
# `make test` (and CI) runs everything else.
test: install test-deps
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

test-faults: install test-deps
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

up: install
	$(BIN)/liaison infra up

down: install
	$(BIN)/liaison infra down

status: install
	$(BIN)/liaison infra status

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	for b in benchmarks/bench_*.py; do [ $$b = benchmarks/bench_soak.py ] || $(BIN)/python $$b || exit 1; done

# 30 minutes at 2,000 records/s, the forwarder's RSS over time (SOAK_MINUTES=1 for a smoke run)
SOAK_MINUTES ?= 30
soak: install
	$(BIN)/python benchmarks/bench_soak.py --minutes $(SOAK_MINUTES)

clean: down
	rm -rf .state

# NetPay Wallet — two commands: `make demo` runs the system, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint format tour clean sysdeps

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

sysdeps:
	@bash scripts/install-system-deps.sh

demo: $(STAMP) sysdeps
	$(VENV)/bin/netpay-demo $(DEMO_ARGS)

tour: $(STAMP)
	$(VENV)/bin/netpay-demo --tour

# The whole suite on SQLite, then the broker's, the vendor's and the hosted e-wallet's suites again with their state in
# PostgreSQL (a private cluster the tests start themselves). What runs on PostgreSQL in several processes whatever
# NETPAY_TEST_DB says runs in the first pass only: the races between processes, the tour on PostgreSQL, the stateful
# ledger test on two broker processes and the protocol model with the broker and every shop in several processes.
test: $(STAMP) sysdeps
	$(PY) -m pytest $(PYTEST_ARGS)
	NETPAY_TEST_DB=postgresql $(PY) -m pytest tests/broker_stub tests/vendor_stub tests/hosted \
		--ignore=tests/broker_stub/test_pg_races.py \
		--deselect tests/broker_stub/test_stateful.py::test_ledger_on_two_broker_processes $(PYTEST_ARGS)

bench: $(STAMP) sysdeps
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info demo-data

# The two set-up commands: `make up` runs the system, `make test` runs the tests.
# Both create or reuse .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install up demo test lint format messages bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11) and "ordertrack needs Python >= 3.11")'
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/ordertrack up

demo: $(STAMP)
	$(BIN)/ordertrack up --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Test files run in parallel, each on one pytest-xdist worker with its own servers and task queues;
# most of the end-to-end tests' time is waiting on real time, so more workers than cores pays.
TEST_WORKERS ?= 4

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# After changing a customer-facing string: re-extract it and merge into every locale's catalog.
messages: $(STAMP)
	$(BIN)/python -m ordertrack.mail.catalogs update
	$(BIN)/python -m ordertrack.mail.catalogs check

# Takes a while: the fault bench runs about six minutes (200 orders, faults, drain); scale.py
# the longest, tens of minutes for its 20,000 orders on 2 cores
# (`$(BIN)/python bench/scale.py --orders 2000` gives a quicker look).
bench: $(STAMP)
	$(BIN)/python bench/cost_per_order.py
	$(BIN)/python bench/history_growth.py
	$(BIN)/python bench/read_path.py
	$(BIN)/python bench/read_path.py --postgres
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf var .pytest_cache .ruff_cache

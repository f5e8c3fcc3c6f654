# One command per check. Each target creates or updates the virtual environment first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.robocell-installed
PYTEST_ARGS ?=

.PHONY: venv demo demo-acceptance test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a bare requirement would pull the multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	ROBOCELL=$(VENV)/bin/robocell scripts/demo.sh

test: venv
	$(PY) -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

demo-acceptance: venv
	ROBOCELL=$(VENV)/bin/robocell scripts/demo_acceptance.sh

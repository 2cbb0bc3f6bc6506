# make repro: run the pipeline.  make test: run the tests.  Both set up .venv from the lock first.
PYTHON ?= python3.11
VENV := .venv
export PATH := $(abspath $(VENV)/bin):$(PATH)

.PHONY: venv repro test lint format lock clean

venv: $(VENV)/.installed

# Rebuilt only when the lock changes; a current .venv makes this a no-op.
$(VENV)/.installed: requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

repro: venv
	dvc repro

test: venv
	python -m pytest

lint: venv
	ruff check .
	ruff format --check .

format: venv
	ruff check --fix .
	ruff format .

# Re-pin every dependency from pyproject.toml (needs the network).
lock: venv
	python -m pip install --quiet pip-tools
	pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

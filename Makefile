# Each target creates or reuses the local virtualenv .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: tour demo test lint bench check lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

tour: $(STAMP)
	$(BIN)/kailash-nb tour

demo: $(STAMP)
	$(BIN)/kailash-nb demo

check: $(STAMP)
	$(BIN)/kailash-nb check notebooks -n 2

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks

lint: $(STAMP)
	$(BIN)/ruff check kailash_nb tests benchmarks

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

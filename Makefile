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

# ruff, and mypy over the package (its settings are in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check kailash_nb tests benchmarks
	$(BIN)/mypy

# The unit, integration and browser tests, and the notebooks as regression tests (strict nbval; the kit's
# pytest plugin keeps each notebook on one xdist worker and compares stable images).
test: lint
	$(BIN)/python -m pytest tests notebooks -n 2 \
		--nbval --nbval-current-env --nbval-sanitize-with=kailash_nb/notebook/sanitize.cfg

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache mutants *.egg-info

# Each target creates or reuses the local virtualenv .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: tour demo test lint bench check lab mutation clean

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
# pytest plugin keeps each notebook on one xdist worker and compares stable images). Debian's redis-server is
# installed first when no redis-server/valkey-server is on PATH: here, before the workers start, never in them.
test: lint
	bash .ci/install-redis $(BIN)/python
	$(BIN)/python -m pytest tests notebooks -n 2 \
		--nbval --nbval-current-env --nbval-sanitize-with=kailash_nb/notebook/sanitize.cfg

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Mutation testing (mutmut; [tool.mutmut] in pyproject.toml lists the files to mutate and the tests that must
# kill the mutants). MUTATE narrows a run to some of them: packages or .py files, e.g.
# make mutation MUTATE=kailash_nb/testing/assertions.py. Two workers: it is CPU heavy.
MUTATE ?= kailash_nb/workflow kailash_nb/testing/assertions.py
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children 2 $(foreach path,$(patsubst %/,%,$(MUTATE)),'$(subst /,.,$(path:.py=)).*')
	$(BIN)/mutmut results
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
		caught = s['killed'] + s['timeout']; ran = caught + s['survived'] + s['suspicious'] + s['no_tests']; \
		print(f\"mutation score {caught / ran:.1%}: {caught} of {ran} mutants caught, {s['survived']} survived\")"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache mutants *.egg-info

# The two commands of the README: `make book` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One BLAS/oneDNN thread per core of the course machine; results do not depend on it.
export PYTHONHASHSEED := 0

.PHONY: venv book test test-fast grade bench clean release

venv: $(VENV)/.installed

# (Re)create the virtual environment when it is missing or requirements.txt changed.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The executed book in _build/html (jupyter-cache keeps unchanged pages from running again).
# -W turns warnings, a failing cell among them, into a failed build.
book: venv
	$(VENV)/bin/jupyter-book build . -W --keep-going

# The whole suite. The browser tests read the built book, so the book is built first.
test: book
	$(PY) -m pytest -q

# Everything but the built book, the browser and the slow grading batches.
test-fast: venv
	$(PY) -m pytest -q -m "not browser and not book and not slow"

# Release the exercises from solutions/ (nbgrader generate_assignment).
release: venv
	$(PY) -m autograder release

# Grade the sample class end to end: collect, grade, feedback, export (see README).
grade: venv
	rm -rf workspace/sample
	$(PY) -m autograder collect autograder/samples/ps1_dsc --assignment ps1_dsc --workspace workspace/sample
	$(PY) -m autograder grade --assignment ps1_dsc --workspace workspace/sample
	$(PY) -m autograder feedback --assignment ps1_dsc --workspace workspace/sample
	$(PY) -m autograder export --workspace workspace/sample --output workspace/sample/grades.csv

bench: venv
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build

# `make run`: set up what is missing, run every notebook, export the PDFs.
# `make test`: set up what is missing, lint, run the test suite (fast mode).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COMPAT := .venv-compat
LINT_PATHS := helpers tests notebooks benchmarks

.PHONY: run fast benchmark ablation seeds replicate readme scripts test test-compat lint format setup system-packages clean

run: setup
	$(PY) -m helpers.pipeline

fast: setup  ## the whole pipeline on a tiny subset, 2 epochs, into artifacts-fast/
	$(PY) -m helpers.pipeline --fast

benchmark: setup  ## inference speed of the last run's saved models -> benchmarks/results
	$(PY) -m benchmarks.speed

ablation: setup  ## what each ingredient of cnn-plus buys (validation only), ~2 hours
	$(PY) -m helpers.pipeline --ablation

seeds: setup  ## every main model run at seeds 42-46 (cnn-plus 42-44), kept; ~1.5 hours
	$(PY) -m helpers.pipeline --seeds

replicate: setup  ## the published recipes at several seeds, then 07_replication; hours
	$(PY) -m helpers.pipeline --replicate
	$(PY) -m helpers.pipeline --update-readme

readme: setup  ## rewrite the README results and replication tables from artifacts/metrics
	$(PY) -m helpers.pipeline --update-readme

scripts: setup  ## the notebooks as py:percent scripts in artifacts/scripts/, to review
	$(PY) -m jupytext --quiet --to "../artifacts/scripts//py:percent" notebooks/*.ipynb

test: setup lint
	$(PY) -m pytest

# The tested floor, Colab's stack of mid-2025 (requirements-compat.txt), in its own
# environment: the model notebooks in fast mode, and the models `make test` saved.
test-compat: setup $(COMPAT)/.installed
	@test -d artifacts-fast/models || $(PY) -m helpers.pipeline --fast
	$(COMPAT)/bin/python -m pytest -p no:cacheprovider tests/test_compat.py

$(COMPAT)/.installed: requirements-compat.txt
	rm -rf $(COMPAT)
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet -r requirements-compat.txt
	touch $@

lint: setup
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m ruff check $(LINT_PATHS)

format: setup
	$(PY) -m ruff format $(LINT_PATHS)
	$(PY) -m ruff check --fix $(LINT_PATHS)

setup: system-packages $(STAMP)

system-packages:
	@bash tools/install-system-packages.sh

# Rebuilt only when the requirements change; the stamp marks a finished install.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e '.[dev]'
	touch $@

clean:  ## remove generated outputs (keeps the .venv)
	rm -rf artifacts artifacts-fast reports/*.pdf reports/html

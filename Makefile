# eisen-lightning: `make help` lists the targets.
# Works on a machine that has only Python 3 and pip: .venv is created when missing, torch is
# installed first at a pinned CPU-friendly version, then the package with the extras it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-dev demo builder test test-all lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)"
	@touch $@

$(VENV)/.installed: $(VENV)/.torch setup.py setup.cfg
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev,onnx,optuna,slurm]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install the package (torch pinned first)

install-dev: $(VENV)/.installed-dev ## install with the test and lint tools and the extras the tests use (onnx, optuna, slurm)

demo: install ## the offline demo: synthetic Decathlon-layout task, train, print the Dice per class
	$(BIN)/python train.py

builder: install ## the visual experiment builder on 127.0.0.1 (prints its address); BUILDER_ARGS="--port 8765"
	$(BIN)/python -m eisen_lightning builder $(BUILDER_ARGS)

test: lint ## lint, then the test suite (slow tests excluded), under 15 minutes on 2 cores
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint ## lint, then every test, slow ones included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev ## ruff lint and format check
	$(BIN)/ruff check src tests benchmarks train.py
	$(BIN)/ruff format --check src tests benchmarks train.py

format: install-dev ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks train.py
	$(BIN)/ruff format src tests benchmarks train.py

# The benchmarks `make bench` runs at their default size, in this order (soak.py, 7 minutes, and
# gpu_checks.py, for a GPU, are run by hand); a script absent from the tree is skipped.
BENCH_SCRIPTS ?= startup io_readers train_step summaries onnx_inference data_pipeline inference growth
BENCH_ENV ?= OMP_NUM_THREADS=1

.PHONY: bench
bench: install-dev ## every benchmark at its default size; outputs in benchmarks/results/<script>.txt
	@mkdir -p benchmarks/results
	@for name in $(BENCH_SCRIPTS); do \
		[ -f benchmarks/$$name.py ] || continue; \
		echo "== benchmarks/$$name.py"; \
		$(BENCH_ENV) $(BIN)/python benchmarks/$$name.py > benchmarks/results/$$name.txt 2> benchmarks/results/$$name.err \
			|| { cat benchmarks/results/$$name.txt; tail -20 benchmarks/results/$$name.err; exit 1; }; \
		cat benchmarks/results/$$name.txt; rm -f benchmarks/results/$$name.err; \
	done

.PHONY: notebooks-clean
notebooks-clean: ## strip outputs and execution counts from notebooks/*.ipynb (before committing)
	$(BIN)/python notebooks/strip_outputs.py

clean: ## remove outputs, caches and the virtual environment
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache build dist src/*.egg-info

# eisen-lightning: `make help` lists the targets.
# Works on a machine that has only Python 3 and pip: .venv is created when missing, torch is
# installed first at a pinned CPU-friendly version, then the package with the extras it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-dev demo test test-all lint format clean

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
	$(BIN)/pip install --quiet -e ".[dev,onnx]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install the package (torch pinned first)

install-dev: $(VENV)/.installed-dev ## install with the test and lint tools (and onnx, which the net tests use)

demo: install ## the offline demo: synthetic Decathlon-layout task, train, print the Dice per class
	$(BIN)/python train.py

test: lint ## lint, then the test suite (slow tests excluded), under 15 minutes on 2 cores
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint ## lint, then every test, slow ones included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev ## ruff lint and format check
	$(BIN)/ruff check src tests train.py
	$(BIN)/ruff format --check src tests train.py

format: install-dev ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests train.py
	$(BIN)/ruff format src tests train.py

clean: ## remove outputs, caches and the virtual environment
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache build dist src/*.egg-info

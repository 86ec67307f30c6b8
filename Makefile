# kerasjobs: Keras training, embedding and tuning as batch jobs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ROOT ?= runs
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

##@ Help

.PHONY: help
help: ## Show the targets and what they do.
	@awk 'BEGIN {FS = ":.*##"} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5)} \
	  /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Set-up

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtual environment and install kerasjobs into it.

##@ Jobs

.PHONY: train
train: $(STAMP) ## Train the default model on the bundled digits dataset.
	$(BIN)/kerasjobs train --root $(ROOT)

.PHONY: tensorboard
tensorboard: $(STAMP) ## Serve TensorBoard for ROOT on 127.0.0.1:6006.
	$(BIN)/kerasjobs tensorboard --root $(ROOT) --host 127.0.0.1 --port 6006

# Each job's own targets live in mk/<job>.mk.
include $(sort $(wildcard mk/*.mk))

##@ Quality

.PHONY: test
test: $(STAMP) ## Run the test suite.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) lint-docker ## Check style and formatting (ruff, hadolint).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: $(STAMP) ## Reformat the code with ruff.
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: bench
bench: $(STAMP) ## Measure training speed, roofline share and CLI start-up.
	@for script in $(sort $(wildcard bench/bench_*.py)); do \
	  $(BIN)/python $$script || exit 1; \
	done

.PHONY: clean
clean: ## Remove the virtual environment and local runs.
	rm -rf $(VENV) $(ROOT) .pytest_cache .ruff_cache

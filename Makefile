# ml-connector developer workflow. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AIRFLOW_VERSION := 3.3.2
DEMO_HOME ?= $(CURDIR)/.demo

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Airflow is pinned in the same pip command as the package: no constraints file can be fetched,
# and a provider's loose `apache-airflow>=3.2` would otherwise let pip move core.
$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the provider with its dev extras

system-deps: ## Install PostgreSQL server binaries and headless Chromium for the tests (Debian, as root)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql (server binaries for the state-store tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver (headless browser for the ML Connector page tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	fi

lint: install ## ruff (lint + format check) and mypy --strict on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One worker per core; each worker shares one sandbox and one Airflow home across its tests, and the
# scheduler demo's tests stay together on one worker (xdist_group "demo").
test: install system-deps lint ## Lint, then the whole pytest suite (real Airflow, sandbox, PostgreSQL)
	$(BIN)/pytest -n auto --dist loadgroup

demo: install ## Run every integration DAG against the sandbox through a real Airflow scheduler
	$(BIN)/python -m airflow_provider_mlconnector.demo run --home $(DEMO_HOME)

up: install ## Leave Airflow and the sandbox running; prints the UI address and login
	$(BIN)/python -m airflow_provider_mlconnector.demo up --home $(DEMO_HOME)

down: ## Stop what `make up` started
	-$(BIN)/python -m airflow_provider_mlconnector.demo down --home $(DEMO_HOME)

bench: install ## The sync benchmark (see benchmarks/README.md)
	$(BIN)/python benchmarks/bench_freshbooks_to_bill.py

clean: ## Remove the venv, caches and demo state
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(DEMO_HOME)

.PHONY: help install system-deps lint test demo up down bench clean

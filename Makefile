# k8s-demo: the two set-up commands on a fresh machine are `make up` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev
# Extra flags for pulumi up/preview/destroy, e.g. ARGS=--yes
ARGS ?=

# No account needed: state goes to a file backend inside the project unless
# PULUMI_BACKEND_URL names another backend. That local backend encrypts
# secrets with a passphrase; it defaults to empty unless you set one.
ifeq ($(origin PULUMI_BACKEND_URL),undefined)
export PULUMI_BACKEND_URL := file://$(CURDIR)/.pulumi-state
ifeq ($(origin PULUMI_CONFIG_PASSPHRASE)$(origin PULUMI_CONFIG_PASSPHRASE_FILE),undefinedundefined)
export PULUMI_CONFIG_PASSPHRASE :=
endif
endif

.PHONY: help venv up preview destroy stack test lint typecheck unit bench-mocks \
        sandbox-tools sandbox sandbox-down e2e bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## Create .venv and install the pinned requirements

stack: venv
	@command -v pulumi >/dev/null || { echo "pulumi CLI not found: install it (see README, Prerequisites)" >&2; exit 1; }
	@mkdir -p .pulumi-state
	pulumi login "$$PULUMI_BACKEND_URL" >/dev/null
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

up: stack ## Deploy STACK (default dev): build the image if needed, wait for the rollout
	pulumi up --stack $(STACK) $(ARGS)

preview: stack ## Show what `make up` would change
	pulumi preview --stack $(STACK) --diff $(ARGS)

destroy: stack ## Remove everything STACK created, namespace included
	pulumi destroy --stack $(STACK) $(ARGS)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy --strict
	$(BIN)/mypy

unit: venv ## Unit tests under Pulumi mocks
	$(BIN)/python -m pytest -q

test: lint typecheck unit ## Everything CI runs without a cluster

bench-mocks: venv ## Time the program under mocks, per stack
	$(BIN)/python -m tools.bench_program

# Local Kubernetes sandbox: real API server, controllers, scheduler, Pulumi engine
# and provider, built from Go modules; pods are simulated by kwok.
sandbox-tools: ## Build the sandbox tools into a per-user cache (cold: about an hour)
	bash sandbox/build-tools.sh

sandbox: ## Start the local sandbox cluster; prints its kubeconfig path
	bash sandbox/up.sh

sandbox-down: ## Remove the local sandbox cluster
	bash sandbox/down.sh

e2e: venv ## End-to-end suite: real pulumi up against the sandbox (needs make sandbox-tools)
	$(BIN)/python -m pytest -m e2e tests/e2e -v

bench: venv ## Sandbox benchmark: pulumi up vs kubectl apply, rollout vs its floor
	$(BIN)/python -m tests.e2e.bench

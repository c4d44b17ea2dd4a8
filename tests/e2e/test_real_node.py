"""The tutorial for real on the sandbox's real node: pages served, and not one request dropped.

A sandbox of its own with a real node (sandbox/node-up.sh: kubelet,
kube-proxy and cri-dockerd on the sandbox's Docker engine), so the pods run
nginx for real and the NodePort answers on 127.0.0.1. The README's
walkthrough runs in a copy of the project with the user's own commands
(``make up``, ``pulumi config set``, ``pulumi up``, ``kubectl``), and each page
is read with an HTTP client.

Every change after the first deploy runs under traffic (tests/e2e/traffic.py:
40 requests/s, at most 4 in flight, a new connection each, to
127.0.0.1:<nodePort> only), which goes on after the command returns until
kube-proxy sends new connections to live pods only (the node's iptables rules
no longer name a pod that is draining), and a few seconds more. For each phase
the tests check: no request failed; kube-proxy dropped the draining pods within
their drain (DRAIN_SECONDS of preStop) of the return, and no request started
after that was answered by another version; and in the failed rollout, no
request reached the broken version. The steps build on each
other in file order; the last ones check ``sandbox/sandbox.sh status`` and
``env`` against the running sandbox, then run ``make sandbox-down`` and check
that the host is as it was before the sandbox started.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from components.webapp import DRAIN_SECONDS, SERVICE_NAME
from tests.e2e.operator import COMMAND_TIMEOUT, command_env, make
from tests.e2e.sandbox import (
    REPLICAS,
    REPO,
    SANDBOX_CLI,
    Cluster,
    Clusters,
    Project,
    pod_ready,
    sandbox_cli,
    wait_for,
)
from tests.e2e.test_e2e import DEPLOYMENT, live_pods, rollout_complete
from tests.e2e.traffic import HOST, Request, Traffic, failures, summary, versions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox("the sandbox's real node, and the host it changes and must put back", real_node=True),
]

NS = "k8s-demo-dev"
#: podReadyTimeoutSeconds for this stack: a real pod is ready in 1-4 s here, so 8 s is ample for a
#: healthy rollout and makes the failed one give up after 7 * (8 + 3) = 77 s rather than 231 s.
POD_READY = 8
#: Seconds the traffic goes on once kube-proxy routes to live pods only, after a command returned.
AFTER_RETURN = 3.0
#: Seconds kube-proxy may take, after a command returned, to route to live pods only, before the phase gives up.
PROXY_TIMEOUT = 60
#: kube-proxy's rule for each endpoint a Service's new connections go to: "<ns>/<service>[:<port>] -> <ip>:<port>".
SERVICE_TARGET = re.compile(
    rf'^-A KUBE-SVC-\S+ -m comment --comment "{re.escape(NS)}/{re.escape(SERVICE_NAME)}(?::\S+)? -> ([0-9.]+):[0-9]+"',
    re.M,
)
#: The broken release: its pods start and serve, but their health check fails, so they never get ready.
BROKEN_VERSION = "0.3"
#: Seconds after which a pod failing its liveness probe would have been restarted (5 + 3 x 10).
LIVENESS_WINDOW = 35
#: Each phase's traffic summary is appended here (one line per phase), for the record of a run.
TRAFFIC_LOG = REPO / "build" / "e2e" / "real-node-traffic.txt"


@dataclass
class Phase:
    """One change under traffic: the command's result, when it returned, when kube-proxy then routed to live pods
    only, and every request sent."""

    done: subprocess.CompletedProcess[str]
    returned: float
    proxied: float
    requests: list[Request]

    def after_proxied(self) -> list[Request]:
        """The requests started once kube-proxy sent new connections to live pods only."""
        return [r for r in self.requests if r.started > self.proxied]

    @property
    def proxy_lag(self) -> float:
        """Seconds from the command's return until kube-proxy routed to live pods only."""
        return self.proxied - self.returned


@pytest.fixture(scope="module")
def names(e2e_clusters: Clusters) -> dict[str, str]:
    """The sandbox's name and work dir, as sandbox/sandbox.sh and make sandbox-down take them."""
    return e2e_clusters.sandbox_env(real_node=True)


def host_state(names: dict[str, str]) -> str:
    done = sandbox_cli("host-state", env=names)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def host_before(e2e_cluster: Cluster, e2e_clusters: Clusters) -> str:
    """What the host looked like before the sandbox with the real node started: taken as it started, which may
    have been for another real-node file of this session."""
    if e2e_clusters.host_before_real_node is None:
        pytest.fail("the real node's sandbox started without the host's state being taken first")
    return e2e_clusters.host_before_real_node


def run(project: Project, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``argv`` in the project copy with the sandbox shell's environment (``make`` through the operator helper)."""
    if argv[0] == "make":
        return make(project, *argv[1:])
    env = command_env(project)
    return subprocess.run(
        argv, cwd=project.dir, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )


def pulumi(project: Project, *args: str) -> str:
    """``pulumi <args>`` in the project copy, as a user types it in the sandbox shell; its stdout."""
    done = run(project, ["pulumi", *args])
    assert done.returncode == 0, f"pulumi {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def get(port: int, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def routes_to_live_pods_only(cluster: Cluster) -> bool:
    """Do the node's iptables rules, as the kernel has them now, send the Service's new connections to live pods only?

    A pod that a rollout or scale-down deletes drains for DRAIN_SECONDS (preStop) while kube-proxy, at its next
    sync, drops it from these rules: until then it still gets new connections, and answers them.
    """
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, timeout=30, check=True)
    targets = set(SERVICE_TARGET.findall(rules.stdout))
    return bool(targets) and targets <= {p["status"].get("podIP") for p in pods(cluster)}


def under_traffic(port: int, *steps: list[str], project: Project) -> Phase:
    """Run each step (``make`` or ``pulumi`` argv) in turn under traffic; it goes on until kube-proxy routes to live
    pods only, and AFTER_RETURN s more."""
    with Traffic(port) as traffic:
        for step in steps:
            done = run(project, step)
            if done.returncode != 0 and step is not steps[-1]:
                break
        returned = time.monotonic()
        wait_for(
            lambda: routes_to_live_pods_only(project.cluster),
            timeout=PROXY_TIMEOUT,
            interval=0.1,
            what="kube-proxy to route to live pods only",
        )
        proxied = time.monotonic()
        time.sleep(AFTER_RETURN)
    phase = Phase(done, returned, proxied, traffic.snapshot())
    kubeconfig = f"--kubeconfig {project.cluster.kubeconfig} "
    TRAFFIC_LOG.parent.mkdir(parents=True, exist_ok=True)
    with TRAFFIC_LOG.open("a", encoding="utf-8") as log:
        took = returned - phase.requests[0].started if phase.requests else 0.0
        label = " && ".join(" ".join([Path(step[0]).name, *step[1:]]).replace(kubeconfig, "") for step in steps)
        log.write(f"{time.strftime('%FT%T')} {label}: {took:.1f} s; {summary(phase.requests)}; ")
        log.write(f"kube-proxy on live pods only {phase.proxy_lag:.1f} s after return, ")
        log.write(f"then: {summary(phase.after_proxied())}\n")
    return phase


def pods(cluster: Cluster) -> list[dict[str, Any]]:
    return live_pods(cluster, NS)


# a. First deploy: the tutorial's 0.1, "Hello Docker!", with make up.


@pytest.fixture(scope="module")
def first_deploy(e2e_project: Project, e2e_cluster: Cluster) -> int:
    """The dev stack at 0.1 (built from app/), with a short pod-ready budget; its node port."""
    e2e_project.write_app("0.1", "Hello Docker!")
    assert make(e2e_project, "stack").returncode == 0
    pulumi(e2e_project, "config", "set", "podReadyTimeoutSeconds", str(POD_READY))
    done = run(e2e_project, ["make", "up", "ARGS=--yes"])
    assert done.returncode == 0, done.stdout + done.stderr
    return int(pulumi(e2e_project, "stack", "output", "nodePort").strip())


@pytest.fixture(scope="module")
def first_page(first_deploy: int, e2e_project: Project) -> tuple[int, str]:
    url = pulumi(e2e_project, "stack", "output", "url").strip()
    assert url == f"http://127.0.0.1:{first_deploy}/"
    return get(first_deploy)


def test_first_deploy_serves_hello_docker(first_page: tuple[int, str]) -> None:
    assert first_page[0] == 200
    assert "<h1>Hello Docker!</h1>" in first_page[1]


def test_first_deploy_serves_version_0_1(first_page: tuple[int, str]) -> None:
    assert '<span id="version">0.1</span>' in first_page[1]


def test_pods_run_on_the_real_node(first_deploy: int, e2e_cluster: Cluster) -> None:
    assert sorted({p["spec"]["nodeName"] for p in pods(e2e_cluster)}) == ["localhost"]


def test_real_health_endpoint_answers(first_deploy: int) -> None:
    assert get(first_deploy, "/healthz") == (200, "ok\n")


def exec_in_pod(cluster: Cluster, *command: str) -> subprocess.CompletedProcess[str]:
    pod = pods(cluster)[0]["metadata"]["name"]
    return subprocess.run(
        [str(cluster.kubectl_bin), "--kubeconfig", str(cluster.kubeconfig), "-n", NS, "exec", pod, "--", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nginx_runs_as_the_unprivileged_user(first_deploy: int, e2e_cluster: Cluster) -> None:
    assert exec_in_pod(e2e_cluster, "id", "-u").stdout.strip() == "10101"


def test_root_filesystem_is_read_only_for_real(first_deploy: int, e2e_cluster: Cluster) -> None:
    done = exec_in_pod(e2e_cluster, "touch", "/usr/share/nginx/html/x")
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr


def test_namespace_enforces_restricted_and_admitted_the_pods(first_deploy: int, e2e_cluster: Cluster) -> None:
    labels = e2e_cluster.get("namespace", NS, NS)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert len(pods(e2e_cluster)) == REPLICAS


def test_network_policy_is_admitted(first_deploy: int, e2e_cluster: Cluster) -> None:
    policy = e2e_cluster.get("networkpolicy", NS, "k8s-demo-allow-http")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


# b. Release 0.2 ("Hello Kubernetes!") with make up, under traffic.


@pytest.fixture(scope="module")
def release(first_page: tuple[int, str], first_deploy: int, e2e_project: Project) -> Phase:
    e2e_project.restore_app()
    return under_traffic(first_deploy, ["make", "up", "ARGS=--yes"], project=e2e_project)


def test_release_succeeds(release: Phase) -> None:
    assert release.done.returncode == 0, release.done.stdout + release.done.stderr


def test_release_drops_no_request(release: Phase) -> None:
    assert failures(release.requests) == [], summary(release.requests)


def test_release_serves_both_versions_while_rolling(release: Phase) -> None:
    assert versions(release.requests) == {"0.1", "0.2"}, summary(release.requests)


def test_once_kube_proxy_dropped_the_old_pods_only_0_2_answers(release: Phase) -> None:
    assert versions(release.after_proxied()) == {"0.2"}, summary(release.after_proxied())


def test_release_serves_hello_kubernetes(release: Phase, first_deploy: int) -> None:
    status, body = get(first_deploy)
    assert (status, "<h1>Hello Kubernetes!</h1>" in body) == (200, True)


# c. Roll back by tag, as the README says: pulumi config set imageTag 0.1 && pulumi up.


@pytest.fixture(scope="module")
def rollback(release: Phase, first_deploy: int, e2e_project: Project) -> Phase:
    return under_traffic(
        first_deploy,
        ["pulumi", "config", "set", "imageTag", "0.1"],
        ["pulumi", "up", "--yes"],
        project=e2e_project,
    )


def test_rollback_succeeds(rollback: Phase) -> None:
    assert rollback.done.returncode == 0, rollback.done.stdout + rollback.done.stderr


def test_rollback_drops_no_request(rollback: Phase) -> None:
    assert failures(rollback.requests) == [], summary(rollback.requests)


def test_once_kube_proxy_dropped_the_0_2_pods_only_0_1_answers(rollback: Phase) -> None:
    assert versions(rollback.after_proxied()) == {"0.1"}, summary(rollback.after_proxied())


def test_rollback_serves_hello_docker_again(rollback: Phase, first_deploy: int) -> None:
    status, body = get(first_deploy)
    assert (status, "<h1>Hello Docker!</h1>" in body) == (200, True)


# d. A failed rollout: 0.3's pods serve but fail their health check; make up rolls back to 0.1.


@pytest.fixture(scope="module")
def failed_rollout(rollback: Phase, first_deploy: int, e2e_project: Project) -> Iterator[Phase]:
    e2e_project.write_app(BROKEN_VERSION, "Hello Broken!")
    conf = e2e_project.dir / "app" / "nginx.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace('return 200 "ok\\n";', "return 503;"), encoding="utf-8")
    try:
        yield under_traffic(
            first_deploy,
            ["pulumi", "config", "rm", "imageTag"],
            ["make", "up", "ARGS=--yes"],
            project=e2e_project,
        )
    finally:
        e2e_project.restore_app()


def test_failed_rollout_is_reported(failed_rollout: Phase) -> None:
    assert failed_rollout.done.returncode != 0
    assert "ProgressDeadlineExceeded" in failed_rollout.done.stdout + failed_rollout.done.stderr


def test_failed_rollout_drops_no_request(failed_rollout: Phase) -> None:
    assert failures(failed_rollout.requests) == [], summary(failed_rollout.requests)


def test_no_request_reaches_the_broken_pods(failed_rollout: Phase) -> None:
    assert BROKEN_VERSION not in versions(failed_rollout.requests), summary(failed_rollout.requests)


def test_after_the_automatic_rollback_only_0_1_answers(failed_rollout: Phase, e2e_cluster: Cluster) -> None:
    assert versions(failed_rollout.after_proxied()) == {"0.1"}, summary(failed_rollout.after_proxied())
    assert rollout_complete(e2e_cluster, namespace=NS)


# e. Drift: kubectl sets 0.2 behind Pulumi's back; make up puts config's 0.1 back.


@pytest.fixture(scope="module")
def drift_repair(failed_rollout: Phase, first_deploy: int, e2e_project: Project, e2e_cluster: Cluster) -> Phase:
    kubectl = str(e2e_cluster.kubectl_bin)
    scope = ["--kubeconfig", str(e2e_cluster.kubeconfig), "-n", NS]
    return under_traffic(
        first_deploy,
        [kubectl, *scope, "set", "image", f"deployment/{DEPLOYMENT}", "web=k8s-demo:0.2"],
        [kubectl, *scope, "rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=120s"],
        ["make", "up", "ARGS=--yes"],
        project=e2e_project,
    )


def test_drift_repair_succeeds(drift_repair: Phase) -> None:
    assert drift_repair.done.returncode == 0, drift_repair.done.stdout + drift_repair.done.stderr


def test_drift_and_its_repair_drop_no_request(drift_repair: Phase) -> None:
    assert failures(drift_repair.requests) == [], summary(drift_repair.requests)


def test_the_drift_was_served(drift_repair: Phase) -> None:
    assert versions(drift_repair.requests) == {"0.1", "0.2"}, summary(drift_repair.requests)


def test_after_the_repair_only_0_1_answers(drift_repair: Phase) -> None:
    assert versions(drift_repair.after_proxied()) == {"0.1"}, summary(drift_repair.after_proxied())


# f. replicas 10 -> 3 -> 10 with pulumi config set and make up.


def scale(first_deploy: int, project: Project, replicas: int) -> Phase:
    return under_traffic(
        first_deploy,
        ["pulumi", "config", "set", "replicas", str(replicas)],
        ["make", "up", "ARGS=--yes"],
        project=project,
    )


@pytest.fixture(scope="module")
def scale_down(drift_repair: Phase, first_deploy: int, e2e_project: Project) -> Phase:
    return scale(first_deploy, e2e_project, 3)


@pytest.fixture(scope="module")
def scale_up(scale_down: Phase, first_deploy: int, e2e_project: Project) -> Phase:
    return scale(first_deploy, e2e_project, REPLICAS)


def test_scale_down_leaves_three_pods(scale_down: Phase, e2e_cluster: Cluster) -> None:
    assert scale_down.done.returncode == 0, scale_down.done.stdout + scale_down.done.stderr
    wait_for(lambda: len(pods(e2e_cluster)) == 3, timeout=30, what="3 live pods")


def test_scale_down_drops_no_request(scale_down: Phase) -> None:
    assert failures(scale_down.requests) == [], summary(scale_down.requests)


def test_scale_up_restores_ten_ready_pods(scale_up: Phase, e2e_cluster: Cluster) -> None:
    assert scale_up.done.returncode == 0, scale_up.done.stdout + scale_up.done.stderr
    assert [pod_ready(p) for p in pods(e2e_cluster)] == [True] * REPLICAS


def test_scale_up_drops_no_request(scale_up: Phase) -> None:
    assert failures(scale_up.requests) == [], summary(scale_up.requests)


def test_probes_pass_against_the_real_health_endpoint(scale_up: Phase, e2e_cluster: Cluster) -> None:
    """Every pod ready and never restarted, the oldest having lived through several liveness checks."""
    found = pods(e2e_cluster)
    assert [pod_ready(p) for p in found] == [True] * REPLICAS
    assert [c["restartCount"] for p in found for c in p["status"]["containerStatuses"]] == [0] * REPLICAS
    oldest = min(_started(p) for p in found)
    # Liveness: first after 5 s, then every 10 s, 3 failures to restart: 35 s would show one.
    assert time.time() - oldest > LIVENESS_WINDOW


def _started(pod: dict[str, Any]) -> float:
    stamp = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    return datetime.fromisoformat(stamp).timestamp()


@pytest.mark.parametrize("change", ["release", "rollback", "failed_rollout", "drift_repair", "scale_down", "scale_up"])
def test_kube_proxy_dropped_the_draining_pods_within_their_drain(change: str, request: pytest.FixtureRequest) -> None:
    # What makes the drain enough: the pods a change deleted still answered (no request failed, above) for as long
    # as kube-proxy kept sending them new connections after the command returned.
    phase: Phase = request.getfixturevalue(change)
    assert phase.proxy_lag < DRAIN_SECONDS


# g. The sandbox's entry point on this sandbox: status, a sandbox shell, and make sandbox-down putting the host back.


@pytest.fixture(scope="module")
def status_up(scale_up: Phase, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sandbox_cli("status", env=names)


def test_status_says_every_part_runs(status_up: subprocess.CompletedProcess[str]) -> None:
    assert status_up.returncode == 0, status_up.stdout + status_up.stderr
    rows = dict(line.split(maxsplit=1) for line in status_up.stdout.splitlines()[1:-1])
    assert {part: rows[part].split(":")[0] for part in ("cluster", "node", "engine")} == dict.fromkeys(
        ("cluster", "node", "engine"), "running"
    )
    assert status_up.stdout.splitlines()[-1] == "up: cluster engine node"


@pytest.fixture(scope="module")
def sandbox_shell(scale_up: Phase, names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``eval "$(sandbox/sandbox.sh env)"`` in a shell, then what it points at: kubeconfig, engine, kubectl."""
    script = 'eval "$(bash "$0" env)" && printf "%s\\n" "$KUBECONFIG" "$DOCKER_HOST" "$(command -v kubectl)"'
    return subprocess.run(
        ["bash", "-c", script, str(SANDBOX_CLI)],
        env={**os.environ, **names},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sandbox_shell_points_at_this_sandbox(
    sandbox_shell: subprocess.CompletedProcess[str], e2e_cluster: Cluster
) -> None:
    assert sandbox_shell.returncode == 0, sandbox_shell.stderr
    # No warning either: the sandbox is up.
    assert (sandbox_shell.stdout.splitlines(), sandbox_shell.stderr) == (
        [str(e2e_cluster.kubeconfig), e2e_cluster.docker_host, str(e2e_cluster.kubectl_bin)],
        "",
    )


@dataclass
class Down:
    """``make sandbox-down``, the host after it, and ``sandbox/sandbox.sh status`` then."""

    done: subprocess.CompletedProcess[str]
    host_after: str
    status: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def sandbox_down(
    status_up: subprocess.CompletedProcess[str],
    sandbox_shell: subprocess.CompletedProcess[str],
    names: dict[str, str],
    e2e_project: Project,
) -> Down:
    done = subprocess.run(
        ["make", "--no-print-directory", "sandbox-down"],
        cwd=e2e_project.dir,
        env={**os.environ, **names},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Down(done, host_state(names), sandbox_cli("status", env=names))


def test_sandbox_down_leaves_the_host_as_it_was(sandbox_down: Down, host_before: str) -> None:
    assert sandbox_down.done.returncode == 0, sandbox_down.done.stderr
    assert sandbox_down.host_after == host_before


def test_status_after_sandbox_down_says_it_is_not_up(sandbox_down: Down) -> None:
    assert sandbox_down.status.returncode == 1, sandbox_down.status.stdout + sandbox_down.status.stderr
    assert sandbox_down.status.stdout.splitlines()[-1].startswith("not up: ")

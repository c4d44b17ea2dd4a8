"""Canary releases for real, on the sandbox's real node: decided by the requests the pods serve.

A stack of its own (``canary``, namespace ``k8s-demo-canary``: 3 stable pods, 1
canary pod, so 25% of new connections) set up with the user's commands
(``make up``, ``pulumi config set``), a short analysis window, and real traffic
from tests/e2e/traffic.py (40 requests/s, at most 4 in flight, a new
connection each, to 127.0.0.1:<nodePort> only), recording every request:

- (a) a build whose page is broken but which goes ready (404 on ``/`` while
  ``/healthz`` answers): aborted by itself, failures bounded by the canary's
  share, none after ``make up`` returns, the old version serving, the release
  recorded as failed;
- (b) a good build: promoted, no request failed, and the state is what a
  rolling release leaves (a rolling preview plans no change);
- (d) a canary whose nginx cannot start: aborted;
- (e) ``make up`` interrupted (SIGINT, as Ctrl-C) during the analysis: the
  canary stays, nothing is promoted; the next ``make up`` finishes it, and
  (c) with no outside traffic at all, decides through its own probes.

The scenarios build on each other in file order.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import pytest

from components.labels import TRACK
from components.webapp import CANARY_DEPLOYMENT_NAME, DEPLOYMENT_NAME
from tests.e2e.operator import command_env
from tests.e2e.sandbox import Cluster, Project, wait_for
from tests.e2e.test_e2e import live_pods
from tests.e2e.test_real_node import get, pulumi, run
from tests.e2e.traffic import Request, Traffic, failures, summary, versions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox("real pods serving real pages and access logs on the sandbox's real node", real_node=True),
]

STACK = "canary"
NS = f"k8s-demo-{STACK}"
#: Stable pods and canary pods: the canary takes 1 / (3 + 1) of new connections.
REPLICAS = 3
CANARY_REPLICAS = 1
SHARE = CANARY_REPLICAS / (REPLICAS + CANARY_REPLICAS)
#: A short window keeps the file short; the least the canary decides on.
WINDOW = 15
MIN_REQUESTS = 20
#: Real pods are ready in 1-4 s here.
POD_READY = 8
#: The tolerance on the broken canary's failures: kube-proxy picks a pod per connection at random, so its share
#: of a window's requests is 25% on average only; 50% more and 5 requests cover that.
SHARE_TOLERANCE = 1.5
EXTRA_FAILURES = 5
#: Seconds of traffic after make up returned, checked for failures.
AFTER_RETURN = 3.0


def make_up() -> list[str]:
    return ["make", "up", f"STACK={STACK}", "ARGS=--yes"]


def config_set(project: Project, key: str, value: str) -> None:
    pulumi(project, "config", "set", "--stack", STACK, key, value)


@dataclass
class Release:
    """One ``make up`` under traffic: its result, when it started and returned, every request sent."""

    done: subprocess.CompletedProcess[str]
    started: float
    returned: float
    requests: list[Request]

    @property
    def output(self) -> str:
        return self.done.stdout + self.done.stderr

    def after_return(self) -> list[Request]:
        return [r for r in self.requests if r.started > self.returned]


def released(project: Project, port: int) -> Release:
    """``make up`` of the stack under traffic, which goes on AFTER_RETURN s past its return."""
    with Traffic(port) as traffic:
        started = time.monotonic()
        done = run(project, make_up())
        returned = time.monotonic()
        time.sleep(AFTER_RETURN)
    return Release(done, started, returned, traffic.snapshot())


def deployments(cluster: Cluster) -> dict[str, str]:
    """The stack's Deployments by name, with the image each runs; one being deleted (its pods go first) is left out."""
    found = [d for d in cluster.get("deployments", NS)["items"] if not d["metadata"].get("deletionTimestamp")]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in found}


def failed_with_make(done: subprocess.CompletedProcess[str]) -> bool:
    """The command under make exited 1 (a failed release), so make exited 2."""
    return done.returncode == 2 and "up] Error 1" in done.stderr


def history(project: Project) -> list[dict[str, Any]]:
    """``make history JSON=1``: the releases, newest first."""
    done = run(project, ["make", "--no-print-directory", "-s", "history", f"STACK={STACK}", "JSON=1"])
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout[done.stdout.index("[") :]))


def write_broken_page(project: Project, version: str) -> None:
    """A build that goes ready but answers 404 on /: nginx's root names a directory that is not there."""
    project.write_app(version, "Hello Broken!")
    conf = project.dir / "app" / "nginx.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace("/usr/share/nginx/html;", "/nonexistent;"), "utf-8")


@pytest.fixture(scope="module")
def stable(e2e_project: Project, e2e_cluster: Cluster) -> int:
    """The stack at 0.1, released (rolling: nothing runs yet to compare a canary with); its node port."""
    e2e_project.write_app("0.1", "Hello Canary!")
    done = run(e2e_project, ["make", "stack", f"STACK={STACK}"])
    assert done.returncode == 0, done.stdout + done.stderr
    for key, value in {
        "rolloutStrategy": "canary",
        "replicas": str(REPLICAS),
        "canaryReplicas": str(CANARY_REPLICAS),
        "canaryAnalysisSeconds": str(WINDOW),
        "canaryMinRequests": str(MIN_REQUESTS),
        "podReadyTimeoutSeconds": str(POD_READY),
    }.items():
        config_set(e2e_project, key, value)
    done = run(e2e_project, make_up())
    assert done.returncode == 0, done.stdout + done.stderr
    return int(pulumi(e2e_project, "stack", "output", "--stack", STACK, "nodePort").strip())


# (a) A broken page that goes ready.


@pytest.fixture(scope="module")
def broken(stable: int, e2e_project: Project) -> Release:
    write_broken_page(e2e_project, "0.2")
    return released(e2e_project, stable)


def test_broken_canary_is_aborted(broken: Release) -> None:
    assert (failed_with_make(broken.done), "failed: error rate 100.0%" in broken.output) == (True, True), broken.output


def test_broken_canary_is_aborted_within_the_window_and_15_s(broken: Release) -> None:
    failed = failures(broken.requests)
    assert failed, summary(broken.requests)
    assert failed[-1].ended - failed[0].started <= WINDOW + 15, summary(failed)


def test_broken_canary_fails_at_most_its_share_of_a_windows_requests(broken: Release) -> None:
    failed = failures(broken.requests)
    first = failed[0].started
    in_window = [r for r in broken.requests if first <= r.started <= first + WINDOW]
    allowed = math.ceil(SHARE * len(in_window) * SHARE_TOLERANCE) + EXTRA_FAILURES
    assert len(failed) <= allowed, f"{len(failed)} failed, {allowed} allowed; {summary(broken.requests)}"


def test_no_request_fails_once_the_broken_canary_is_aborted(broken: Release) -> None:
    after = broken.after_return()
    assert (len(after) > 0, failures(after)) == (True, []), summary(after)


def test_the_old_version_serves_after_the_abort(broken: Release, e2e_cluster: Cluster) -> None:
    assert (versions(broken.after_return()), deployments(e2e_cluster)) == (
        {"0.1"},
        {DEPLOYMENT_NAME: "k8s-demo:0.1"},
    )


def test_the_aborted_release_is_recorded_as_failed(broken: Release, e2e_project: Project) -> None:
    abort, canary = history(e2e_project)[:2]
    # Newest first: the abort (0.1 back), then the canary's own release of 0.2, failed with its figures.
    assert (abort["imageTag"], abort["result"], canary["imageTag"], canary["result"]) == (
        "0.1",
        "succeeded",
        "0.2",
        "failed",
    )
    assert canary["canary"].startswith(f"aborted in release {abort['release']}: error rate 100.0%"), canary


def test_image_tag_is_back_at_the_last_good_tag(broken: Release, e2e_project: Project) -> None:
    assert pulumi(e2e_project, "config", "get", "--stack", STACK, "imageTag").strip() == "0.1"


# (b) A good build: promoted, and the state a rolling release leaves.


@pytest.fixture(scope="module")
def good(broken: Release, stable: int, e2e_project: Project) -> Release:
    e2e_project.restore_app()
    e2e_project.write_app("0.3", "Hello Canary!")
    # What the abort's message says to do to release app/VERSION again.
    pulumi(e2e_project, "config", "rm", "--stack", STACK, "imageTag")
    return released(e2e_project, stable)


def test_good_canary_is_promoted(good: Release) -> None:
    assert (good.done.returncode, "Canary of 0.3 promoted" in good.output) == (0, True), good.output


def test_good_canary_drops_no_request(good: Release) -> None:
    assert failures(good.requests) == [], summary(good.requests)


def test_good_canary_served_its_share_before_the_stable_pods_rolled(good: Release) -> None:
    assert versions(good.requests) == {"0.1", "0.3"}, summary(good.requests)


def test_after_promotion_only_the_stable_deployment_runs_the_new_image(good: Release, e2e_cluster: Cluster) -> None:
    pods = live_pods(e2e_cluster, NS)
    assert (deployments(e2e_cluster), len(pods), {TRACK in p["metadata"]["labels"] for p in pods}) == (
        {DEPLOYMENT_NAME: "k8s-demo:0.3"},
        REPLICAS,
        {False},
    )


def test_after_promotion_a_rolling_release_would_change_nothing(good: Release, e2e_project: Project) -> None:
    config_set(e2e_project, "rolloutStrategy", "rolling")
    try:
        done = run(e2e_project, ["pulumi", "preview", "--stack", STACK, "--expect-no-changes"])
    finally:
        config_set(e2e_project, "rolloutStrategy", "canary")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promotion_gives_image_tag_back_to_app_version(good: Release, e2e_project: Project) -> None:
    assert pulumi(e2e_project, "config", "get", "--stack", STACK, "imageTag").strip() == "app/VERSION"


# (d) A canary that crashes: nginx cannot start.


@pytest.fixture(scope="module")
def crashing(good: Release, stable: int, e2e_project: Project) -> Release:
    e2e_project.write_app("0.4", "Hello Crash!")
    conf = e2e_project.dir / "app" / "nginx.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace("server_tokens off;", "server_tokens sometimes;"), "utf-8")
    try:
        return released(e2e_project, stable)
    finally:
        e2e_project.restore_app()


def test_crashing_canary_is_aborted(crashing: Release) -> None:
    assert (failed_with_make(crashing.done), "canary pod" in crashing.output, "crashed" in crashing.output) == (
        True,
        True,
        True,
    ), crashing.output


def test_crashing_canary_drops_no_request(crashing: Release) -> None:
    # A pod that never gets ready gets no traffic.
    assert failures(crashing.requests) == [], summary(crashing.requests)


def test_stable_pods_keep_the_last_good_version_after_a_crash(crashing: Release, e2e_cluster: Cluster) -> None:
    assert deployments(e2e_cluster) == {DEPLOYMENT_NAME: "k8s-demo:0.3"}


# (e) Interrupted during the analysis; the next make up finishes it, (c) through probes alone.


@dataclass
class Interrupted:
    """``make up`` stopped by SIGINT during the analysis, what it left, and the next ``make up``."""

    stopped: subprocess.CompletedProcess[str]
    left: dict[str, str]
    canary_tag: str
    resumed: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def interrupted(crashing: Release, stable: int, e2e_project: Project, e2e_cluster: Cluster) -> Interrupted:
    e2e_project.write_app("0.5", "Hello Again!")
    pulumi(e2e_project, "config", "rm", "--stack", STACK, "imageTag")
    # As from a terminal, where Ctrl-C interrupts: an xdist worker ignores SIGINT (its controller takes Ctrl-C), and
    # an ignored signal stays ignored in every child, so make and Python would never see it.
    ignored = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        process = subprocess.Popen(
            ["make", "--no-print-directory", *make_up()[1:]],
            cwd=e2e_project.dir,
            env={**command_env(e2e_project), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Analysis:"):
            break
    time.sleep(2)
    # Ctrl-C: SIGINT to the terminal's foreground process group, make and the command under it.
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    stopped = subprocess.CompletedProcess(process.args, process.returncode, "".join(seen) + out, err)
    left = deployments(e2e_cluster)
    canary_tag = pulumi(e2e_project, "config", "get", "--stack", STACK, "canaryImageTag").strip()
    # No outside traffic at all: the canary gets only the probes the analysis sends.
    resumed = run(e2e_project, make_up())
    return Interrupted(stopped, left, canary_tag, resumed)


def test_interrupted_make_up_says_how_to_resolve_it(interrupted: Interrupted) -> None:
    output = interrupted.stopped.stdout + interrupted.stopped.stderr
    assert "interrupted: the canary of 0.5 still runs beside 0.3" in output, output


def test_interrupted_release_leaves_the_canary_and_promotes_nothing(interrupted: Interrupted) -> None:
    assert (interrupted.left, interrupted.canary_tag) == (
        {DEPLOYMENT_NAME: "k8s-demo:0.3", CANARY_DEPLOYMENT_NAME: "k8s-demo:0.5"},
        "app/VERSION",
    )


def test_next_make_up_finishes_the_interrupted_release(interrupted: Interrupted, e2e_cluster: Cluster) -> None:
    output = interrupted.resumed.stdout + interrupted.resumed.stderr
    assert (interrupted.resumed.returncode, "left by an interrupted make up" in output) == (0, True), output
    assert deployments(e2e_cluster) == {DEPLOYMENT_NAME: "k8s-demo:0.5"}


def test_without_outside_traffic_the_canary_is_decided_through_probes(interrupted: Interrupted, stable: int) -> None:
    output = interrupted.resumed.stdout + interrupted.resumed.stderr
    assert ("sending" in output and "probes to the canary pods" in output, "Canary of 0.5 promoted" in output) == (
        True,
        True,
    ), output
    status, body = get(stable)
    assert (status, '<span id="version">0.5</span>' in body) == (200, True)


def test_history_tells_each_canarys_outcome(interrupted: Interrupted, e2e_project: Project) -> None:
    outcomes = [(r["imageTag"], r["result"], r["canary"].split(" ")[0]) for r in history(e2e_project) if r["canary"]]
    # Newest first: 0.5 resumed and promoted, 0.5 interrupted, 0.4 crashed, 0.3 promoted, 0.2 aborted.
    assert outcomes == [
        ("0.5", "succeeded", "promoted"),
        ("0.5", "interrupted", "interrupted;"),
        ("0.4", "failed", "aborted"),
        ("0.3", "succeeded", "promoted"),
        ("0.2", "failed", "aborted"),
    ]


def test_canary_pods_are_gone_once_resolved(interrupted: Interrupted, e2e_cluster: Cluster) -> None:
    wait_for(
        lambda: not [p for p in live_pods(e2e_cluster, NS) if TRACK in p["metadata"]["labels"]],
        timeout=40,
        what="the canary pods to go",
    )

"""The canary release's flow over a fake stack and a fake cluster: the config it sets, the updates, the verdicts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from components.webapp import CANARY_DEPLOYMENT_NAME
from ops.cluster import Refused
from ops.diagnosis import REVISION
from ops.releases.canary import CANARY_TAG, CanaryResult, Pods, print_canary, release
from ops.releases.command import UpOutcome
from ops.releases.model import IMAGE_TAG_KEY, release_message
from project import config_key
from tests.examples import example_config
from tests.releases_fakes import FakeStack, no_git, update

NS = "k8s-demo-dev"
STABLE = update("10:00", tag="0.1", message=release_message("pulumi up", "k8s-demo", "0.1", "dev"))


def canary_config(**keys: str) -> dict[str, str]:
    values = {
        "rolloutStrategy": "canary",
        "replicas": "4",
        "canaryAnalysisSeconds": "10",
        "canaryMinRequests": "20",
        **keys,
    }
    return {**example_config("dev"), **{config_key(k): v for k, v in values.items()}}


def pod(name: str, *, restarts: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"restartCount": restarts, "state": {"running": {}}}],
        },
    }


def lines(status: int, count: int) -> list[str]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [f"{now} " + json.dumps({"status": status, "request_time": 0.002}) for _ in range(count)]


@dataclass
class FakeCluster:
    """Canary and stable pods, whose logs grow by a fixed number of requests per read; probes land in the log."""

    canary_status: int = 200
    canary_per_read: int = 30
    stable_per_read: int = 100
    restarts: int = 0
    logs: dict[str, list[str]] = field(default_factory=dict)
    probes: int = 0
    scaled: list[tuple[str, int]] = field(default_factory=list)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        if "track=canary" in selector:
            # Scaled to zero: gone.
            return [] if self.scaled else [pod("canary-1", restarts=self.restarts)]
        return [pod("stable-1"), pod("stable-2")]

    def replica_sets(self, selector: str) -> list[dict[str, Any]]:
        return []

    def deployment(self, name: str) -> dict[str, Any] | None:
        return None

    def events(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass

    def log(
        self,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        previous: bool = False,
        since_seconds: int | None = None,
        timestamps: bool = False,
    ) -> str:
        if previous:
            return "nginx: [emerg] unknown directive\n"
        found = self.logs.setdefault(pod, [])
        if pod.startswith("canary"):
            found += lines(self.canary_status, self.canary_per_read)
        else:
            found += lines(200, self.stable_per_read)
        return "\n".join(found)

    def proxy_get(self, pod: str, port: int, path: str) -> int:
        self.probes += 1
        self.logs.setdefault(pod, []).extend(lines(self.canary_status, 1))
        return self.canary_status

    def scale(self, deployment: str, replicas: int) -> None:
        self.scaled.append((deployment, replicas))


@dataclass
class Clock:
    """A clock that only sleeping moves; ``interrupt_at`` raises KeyboardInterrupt (Ctrl-C) once it is passed."""

    now: float = 0.0
    interrupt_at: float | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.interrupt_at is not None and self.now >= self.interrupt_at:
            raise KeyboardInterrupt


def run(stack: FakeStack, cluster: FakeCluster, clock: Clock | None = None) -> CanaryResult | None:
    clock = clock or Clock()

    @contextlib.contextmanager
    def connect(config: Mapping[str, str], namespace: str) -> Iterator[Pods]:
        assert namespace == NS
        yield cluster

    return release(
        stack,
        app_version="0.2",
        app_version_at=no_git,
        confirm=None,
        connect=connect,
        announce=lambda _: None,
        clock=clock,
        sleep=clock.sleep,
    )


def stack(*outcomes: bool, **keys: str) -> FakeStack:
    return FakeStack([STABLE], [UpOutcome(ok) for ok in outcomes], values=canary_config(**keys))


def test_a_good_canary_is_promoted_in_two_recorded_stages() -> None:
    fake = stack(True, True)
    result = run(fake, FakeCluster())
    assert (result.outcome if result else None, fake.calls) == (
        "promoted",
        [
            "set imageTag=0.1",
            f"set {CANARY_TAG}=app/VERSION",
            "up",
            "set imageTag=app/VERSION",
            f"set {CANARY_TAG}=",
            "up",
        ],
    )


def test_stage_messages_name_the_stage_and_the_image() -> None:
    fake = stack(True, True)
    run(fake, FakeCluster())
    assert [m.split(",")[0] for m in fake.messages] == ["canary stage 1 of 2", "canary stage 2 of 2"]
    assert [m.rsplit(": image ", 1)[1] for m in fake.messages] == ["k8s-demo:0.2, stack dev"] * 2


def test_a_broken_canary_is_stopped_then_removed_and_the_stable_tag_kept() -> None:
    fake, cluster = stack(True, True), FakeCluster(canary_status=404)
    result = run(fake, cluster)
    assert (result.outcome if result else None, cluster.scaled, fake.calls[3:], fake.whole_stacks) == (
        "aborted",
        [(CANARY_DEPLOYMENT_NAME, 0)],
        ["set imageTag=0.1", f"set {CANARY_TAG}=", "up"],
        [False, True],
    )


def test_the_abort_records_the_figures_that_decided_it() -> None:
    fake = stack(True, True)
    run(fake, FakeCluster(canary_status=500))
    assert fake.messages[1].startswith(
        "canary of 0.2 aborted (error rate 100.0% is 100.0 points above the stable pods' 0.0% (at most 1 allowed): "
        "canary 30 requests, 100.0% errors"
    )


def test_a_broken_canary_is_aborted_at_its_first_read_with_enough_requests() -> None:
    clock = Clock()
    run(stack(True, True), FakeCluster(canary_status=500), clock)
    # 2.5 s: the first read of the logs, a quarter of the 10 s window.
    assert clock.now == 2.5


def test_a_crashed_canary_pod_is_aborted() -> None:
    result = run(stack(True, True), FakeCluster(restarts=1))
    assert ((result.outcome, result.reason) if result else None) == (
        "aborted",
        "canary pod canary-1 crashed: restarted",
    )


def test_without_traffic_probes_make_up_the_minimum_and_decide() -> None:
    cluster = FakeCluster(canary_per_read=0)
    result = run(stack(True, True), cluster)
    assert (result.outcome if result else None, cluster.probes) == ("promoted", 20)


def test_probes_go_to_canary_pods_only() -> None:
    cluster = FakeCluster(canary_per_read=0)
    run(stack(True, True), cluster)
    assert {pod for pod, found in cluster.logs.items() if len(found) == 20} == {"canary-1"}


def test_too_few_requests_even_with_probes_abort() -> None:
    # Probes that never reach the log (a proxy that answers, a pod that logs nothing): no evidence, no promotion.
    cluster = FakeCluster(canary_per_read=0)
    cluster.proxy_get = lambda pod, port, path: 200  # type: ignore[method-assign]
    result = run(stack(True, True), cluster)
    assert (result.reason if result else None) == (
        "too few requests to decide: the canary served 0, fewer than canaryMinRequests (20)"
    )


def test_interrupted_analysis_leaves_the_canary_in_config_and_promotes_nothing() -> None:
    fake = stack(True)
    result = run(fake, FakeCluster(), Clock(interrupt_at=5))
    assert (result.outcome if result else None, fake.values[config_key(CANARY_TAG)], fake.calls[-1]) == (
        "interrupted",
        "app/VERSION",
        "up",
    )


def test_an_interrupted_release_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(stack(True), FakeCluster(), Clock(interrupt_at=5))
    assert result is not None
    assert print_canary(result) == 130
    assert "The next `make up` finishes the release with a new analysis window" in capsys.readouterr().err


def test_the_next_make_up_finishes_an_interrupted_canary_with_a_new_window() -> None:
    fake = stack(True, True, imageTag="0.1", canaryImageTag="app/VERSION")
    clock = Clock()
    result = run(fake, FakeCluster(), clock)
    assert (result.outcome if result else None, clock.now >= 10, fake.values[IMAGE_TAG_KEY]) == (
        "promoted",
        True,
        "app/VERSION",
    )


@pytest.mark.parametrize(
    ("history", "keys"),
    [
        ([], {}),  # the first release: nothing runs to compare with
        ([STABLE], {"imageTag": "0.1"}),  # the tag that runs already
        ([update("10:00", tag="0.1", result="failed")], {}),  # the newest release failed
    ],
)
def test_no_canary_without_a_stable_release_to_compare_with(history: list[Any], keys: dict[str, str]) -> None:
    fake = FakeStack(history, values=canary_config(**keys))
    assert (run(fake, FakeCluster()), fake.calls) == (None, [])


def test_a_failed_stage1_is_aborted_and_the_canary_removed() -> None:
    fake = stack(False, True)
    result = run(fake, FakeCluster())
    assert (result.outcome if result else None, fake.calls[-3:]) == (
        "aborted",
        ["set imageTag=0.1", f"set {CANARY_TAG}=", "up"],
    )


def test_a_canary_that_cannot_be_judged_is_aborted_saying_why() -> None:
    cluster = FakeCluster()

    def refused(pod: str, **_: object) -> str:
        raise Refused(verb="get", resource="pods/log", namespace=NS, status=403, message="forbidden")

    cluster.log = refused  # type: ignore[method-assign]
    result = run(stack(True, True), cluster)
    assert ((result.outcome, result.reason) if result else None) == (
        "aborted",
        f"the analysis could not read the cluster: the cluster refused get on pods/log in namespace {NS} (HTTP 403): "
        "forbidden",
    )


class CrashLoopingCanary(FakeCluster):
    """A canary pod in CrashLoopBackOff, owned by the canary's ReplicaSet, as the API shows it."""

    def replica_sets(self, selector: str) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "k8s-demo-canary-abc", "uid": "rs-1", "annotations": {REVISION: "1"}}}]

    def pods(self, selector: str) -> list[dict[str, Any]]:
        if "track=canary" not in selector:
            return [pod("stable-1")]
        crashed = pod("canary-1", restarts=2)
        crashed["metadata"]["ownerReferences"] = [{"uid": "rs-1"}]
        crashed["status"]["containerStatuses"] = [
            {
                "name": "app",
                "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ]
        return [crashed]


def test_a_crashed_canarys_abort_says_why_from_its_pods() -> None:
    result = run(stack(True, True), CrashLoopingCanary())
    assert (result.reason if result else None) == (
        "canary pod canary-1: CrashLoopBackOff: back-off 20s restarting; "
        "CrashLoopBackOff (1 pod, exit code 1 (Error)): last log line: nginx: [emerg] unknown directive"
    )

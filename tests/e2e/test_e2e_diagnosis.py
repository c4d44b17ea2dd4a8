"""A failed release says why, and fails fast: each cause for real on the sandbox's real node, under traffic.

The dev stack runs 3 replicas of 0.1 (a short pod-ready budget, so a rollout that cannot complete gives up after
2 x (4 + 3) + 14 = 28 s). Then, with the user's own commands (``pulumi config set``, ``make up``, ``kubectl`` for
the quota an admin sets), five releases fail:

- a missing image (``imageTag`` names a tag the node lacks; local images are never pulled): terminal;
- a build whose nginx config fails at start: a crash loop, terminal after one restart, with nginx's log line;
- a build whose health check answers 500: readiness fails, which is not terminal: the update waits until
  Kubernetes gives up on the rollout (its progress deadline, 2 x (4 + 3) = 14 s), then stops;
- a CPU request no node has room for: ``FailedScheduling``, not terminal, so the same; the tag is the running
  one, so nothing is rolled back and the user puts the setting back;
- a namespace ResourceQuota full to its last pod, with ``maxUnavailable`` 0: ``FailedCreate``, terminal.

For each: the cause named in ``make up``'s output and in its JSON (``OUT=``), how long the failed update ran
(``pulumi stack history``), the time until the old version was fully available again, no failed request, and only
0.1 answering throughout (traffic from tests/e2e/traffic.py, 127.0.0.1 only, bounded). ``make history`` then
shows one line of cause per failed release. Each case's figures are appended to build/e2e/diagnosis.txt, its
output written to build/e2e/diagnosis-<case>.log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sandbox import REPO, Cluster, Project
from tests.e2e.test_e2e import live_pods, rollout_complete
from tests.e2e.test_real_node import Phase, pulumi, run, under_traffic
from tests.e2e.traffic import failures, summary, versions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox(
        "the sandbox's real node: pods that really pull, crash, fail probes and wait for room", real_node=True
    ),
]

NS = "k8s-demo-dev"
REPLICAS = 3
#: podReadyTimeoutSeconds: a real pod is ready in 1-4 s here; a rollout that cannot complete fails after 28 s.
POD_READY = 4
#: Seconds within which make up stops an update once a terminal cause shows (the issue's bound).
STOP_BOUND = 10
#: The Deployment's progressDeadlineSeconds here: 2 x (podReadyTimeoutSeconds + minReadySeconds).
DEADLINE = 2 * (POD_READY + 3)
#: The figures of each case, for the record of a run.
RECORD = REPO / "build" / "e2e" / "diagnosis.txt"
#: nginx's words when its config has the unknown directive the crash case adds.
CRASH_LINE = 'unknown directive "no_such_directive"'


@dataclass
class Case:
    """One failing release under traffic: the command's phase, its JSON, and the failed update's history entry."""

    phase: Phase
    result: dict[str, Any]
    failed_update: dict[str, Any]
    started: float

    @property
    def output(self) -> str:
        return self.phase.done.stdout + self.phase.done.stderr

    @property
    def causes(self) -> list[str]:
        found = (self.result.get("update") or {}).get("diagnosis") or {}
        return [cause["cause"] for cause in found.get("causes", [])]

    @property
    def time_to_fail(self) -> float:
        """Seconds the failed update ran (its history entry: start to end, 1 s resolution)."""
        return (_stamp(self.failed_update["endTime"]) - _stamp(self.failed_update["startTime"])).total_seconds()

    @property
    def time_to_recover(self) -> float:
        """Seconds from the command's start until it returned, the old version fully available again."""
        return self.phase.returned - self.started


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stop_after_rollout_start(case: Case, cluster: Cluster, image: str) -> float:
    """Seconds from the failed rollout's start (its ReplicaSet's creation) to the failed update's end."""
    created = [
        _stamp(rs["metadata"]["creationTimestamp"])
        for rs in cluster.get("replicasets", NS)["items"]
        if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image
    ]
    assert len(created) == 1, created
    return (_stamp(case.failed_update["endTime"]) - created[0]).total_seconds()


def last_update(project: Project, skip: int = 0) -> dict[str, Any]:
    """The newest update in ``pulumi stack history`` (``skip`` newer ones passed over)."""
    entries = [e for e in json.loads(pulumi(project, "stack", "history", "--json")) if e["kind"] == "update"]
    return dict(entries[skip])


def release(project: Project, port: int, name: str, *setup: list[str]) -> Case:
    """``setup`` then ``make up ARGS=--yes OUT=<json>`` under traffic; the failed update is the newest but one
    when it was rolled back, else the newest."""
    out = project.dir / "build" / f"up-{name}.json"
    started = time.monotonic()
    phase = under_traffic(port, *setup, ["make", "up", "ARGS=--yes", f"OUT={out}"], project=project)
    result = json.loads(out.read_text(encoding="utf-8"))
    failed = last_update(project, skip=1 if result.get("rollback") else 0)
    case = Case(phase, result, failed, started)
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    (RECORD.parent / f"diagnosis-{name}.log").write_text(case.output, encoding="utf-8")
    with RECORD.open("a", encoding="utf-8") as record:
        record.write(
            f"{time.strftime('%FT%T')} {name}: causes {case.causes}, failed update ran {case.time_to_fail:.0f} s, "
            f"old version fully available {case.time_to_recover:.1f} s after make up started; "
            f"{summary(phase.requests)}\n"
        )
    return case


def old_version_only(case: Case) -> None:
    assert failures(case.phase.requests) == [], summary(case.phase.requests)
    assert versions(case.phase.requests) == {"0.1"}, summary(case.phase.requests)


def write_conf(project: Project, version: str, old: str, new: str) -> None:
    """A build of ``version`` whose nginx config has ``old`` replaced by ``new``, as a developer's edit would."""
    project.write_app(version, "Hello Broken!")
    conf = project.dir / "app" / "nginx.conf"
    text = conf.read_text(encoding="utf-8")
    assert old in text
    conf.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture(scope="module")
def port(e2e_project: Project, e2e_cluster: Cluster) -> int:
    """The dev stack at 0.1, 3 replicas, a short pod-ready budget; its node port."""
    e2e_project.write_app("0.1", "Hello Docker!")
    assert run(e2e_project, ["make", "stack"]).returncode == 0
    pulumi(e2e_project, "config", "set", "replicas", str(REPLICAS))
    pulumi(e2e_project, "config", "set", "podReadyTimeoutSeconds", str(POD_READY))
    done = run(e2e_project, ["make", "up", "ARGS=--yes"])
    assert done.returncode == 0, done.stdout + done.stderr
    return int(pulumi(e2e_project, "stack", "output", "nodePort").strip())


# a. A missing image: terminal at once (local images are never pulled).


@pytest.fixture(scope="module")
def missing(port: int, e2e_project: Project) -> Case:
    return release(e2e_project, port, "missing-image", ["pulumi", "config", "set", "imageTag", "0.9-missing"])


def test_a_missing_image_is_named(missing: Case) -> None:
    assert missing.phase.done.returncode != 0
    assert missing.causes[0] == "ErrImageNeverPull"
    assert 'Container image "k8s-demo:0.9-missing" is not present with pull policy of Never' in missing.output


def test_a_missing_image_stops_the_update_at_once(missing: Case, e2e_cluster: Cluster) -> None:
    assert missing.result["update"]["stopped"] is True
    # The kubelet names it within 2 s of the pods' creation.
    assert stop_after_rollout_start(missing, e2e_cluster, "k8s-demo:0.9-missing") <= 2 + STOP_BOUND


def test_a_missing_image_is_rolled_back_to_0_1_and_only_0_1_answers(missing: Case, e2e_cluster: Cluster) -> None:
    assert (missing.result["rollback"]["tag"], missing.result["rollback"]["succeeded"]) == ("0.1", True)
    old_version_only(missing)
    assert rollout_complete(e2e_cluster, REPLICAS, NS)


# b. A crash loop: nginx refuses its config; terminal after one restart, with its log line.


@pytest.fixture(scope="module")
def crash(missing: Case, port: int, e2e_project: Project) -> Case:
    write_conf(e2e_project, "0.3", "server_name  _;", "server_name  _;\n    no_such_directive on;")
    try:
        return release(e2e_project, port, "crash-loop", ["pulumi", "config", "rm", "imageTag"])
    finally:
        # Now, not at the module's end: the next case builds from app/ too.
        e2e_project.restore_app()


def test_a_crash_loop_is_named_with_exit_code_and_log(crash: Case) -> None:
    cause = crash.result["update"]["diagnosis"]["causes"][0]
    assert (cause["cause"], cause["exitCode"], cause["reason"]) == ("CrashLoopBackOff", 1, "Error")
    assert any(CRASH_LINE in line for line in cause["log"]), cause["log"]
    assert CRASH_LINE in crash.output


def test_a_crash_loop_stops_the_update(crash: Case, e2e_cluster: Cluster) -> None:
    assert crash.result["update"]["stopped"] is True
    # The first restart, and the back-off after it, come about 5 s after the pods' creation.
    assert stop_after_rollout_start(crash, e2e_cluster, "k8s-demo:0.3") <= 5 + STOP_BOUND


def test_a_crash_loop_is_rolled_back_and_only_0_1_answers(crash: Case) -> None:
    assert crash.result["rollback"]["succeeded"] is True
    old_version_only(crash)


# c. Readiness answering 500: not terminal, so the update waits for Kubernetes' verdict (its progress deadline), then
# stops; the diagnosis comes with the verdict.


@pytest.fixture(scope="module")
def unready(crash: Case, port: int, e2e_project: Project) -> Case:
    write_conf(e2e_project, "0.4", 'return 200 "ok\\n";', "return 500;")
    try:
        return release(e2e_project, port, "readiness-500", ["pulumi", "config", "rm", "imageTag"])
    finally:
        e2e_project.restore_app()


def test_failing_readiness_is_named_with_the_probes_message(unready: Case) -> None:
    assert "ReadinessProbeFailed" in unready.causes
    assert "Readiness probe failed: HTTP probe failed with statuscode: 500" in unready.output


def test_failing_readiness_is_waited_for_until_kubernetes_gives_up(unready: Case, e2e_cluster: Cluster) -> None:
    update = unready.result["update"]
    assert (update["stopped"], update["verdict"].split(":")[0]) == (True, "ProgressDeadlineExceeded"), update
    # Not before the deadline (1 s timestamps), and within the bound after it.
    assert DEADLINE - 1 <= stop_after_rollout_start(unready, e2e_cluster, "k8s-demo:0.4") <= DEADLINE + STOP_BOUND


def test_failing_readiness_is_rolled_back_and_only_0_1_answers(unready: Case) -> None:
    assert unready.result["rollback"]["succeeded"] is True
    old_version_only(unready)


# d. More CPU than the node has: FailedScheduling, waited for; the same tag, so nothing to roll back.


@pytest.fixture(scope="module")
def no_room(unready: Case, port: int, e2e_project: Project) -> Case:
    return release(
        e2e_project,
        port,
        "insufficient-cpu",
        ["pulumi", "config", "set", "cpuRequest", "64"],
        ["pulumi", "config", "set", "cpuLimit", "64"],
    )


@pytest.fixture(scope="module")
def room_again(no_room: Case, port: int, e2e_project: Project) -> Phase:
    """The user puts the setting back: ``pulumi config rm`` and ``make up``."""
    return under_traffic(
        port,
        ["pulumi", "config", "rm", "cpuRequest"],
        ["pulumi", "config", "rm", "cpuLimit"],
        ["make", "up", "ARGS=--yes"],
        project=e2e_project,
    )


def test_no_room_is_named_with_the_schedulers_message(no_room: Case) -> None:
    assert no_room.causes == ["FailedScheduling"]
    assert "Insufficient cpu" in no_room.output


def test_no_room_is_waited_for_until_kubernetes_gives_up(no_room: Case) -> None:
    update = no_room.result["update"]
    assert (update["stopped"], update["verdict"].split(":")[0]) == (True, "ProgressDeadlineExceeded"), update
    assert no_room.time_to_fail >= DEADLINE - 1, no_room.failed_update


def test_no_room_is_not_rolled_back_by_tag(no_room: Case) -> None:
    assert no_room.result["rollback"] is None
    assert "runs the same tag 0.1" in no_room.result["notRolledBack"]


def test_no_room_and_its_repair_drop_no_request(no_room: Case, room_again: Phase, e2e_cluster: Cluster) -> None:
    old_version_only(no_room)
    assert room_again.done.returncode == 0, room_again.done.stdout + room_again.done.stderr
    assert failures(room_again.requests) == [], summary(room_again.requests)
    assert rollout_complete(e2e_cluster, REPLICAS, NS)


# e. A ResourceQuota full to its last pod refuses the new ones: FailedCreate, terminal once it lasts.


@pytest.fixture(scope="module")
def quota(room_again: Phase, port: int, e2e_project: Project, e2e_cluster: Cluster) -> Iterator[Case]:
    e2e_cluster.kubectl("-n", NS, "create", "quota", "pods-full", f"--hard=pods={REPLICAS}")
    e2e_project.restore_app()
    try:
        yield release(
            e2e_project,
            port,
            "quota",
            ["pulumi", "config", "set", "maxUnavailable", "0"],
            ["pulumi", "config", "rm", "imageTag"],
        )
    finally:
        e2e_cluster.kubectl("-n", NS, "delete", "quota", "pods-full")


def test_a_full_quota_is_named_with_the_api_servers_message(quota: Case) -> None:
    assert quota.causes[0] == "FailedCreate"
    assert "exceeded quota: pods-full" in quota.output


def test_a_full_quota_stops_the_update(quota: Case, e2e_cluster: Cluster) -> None:
    assert quota.result["update"]["stopped"] is True
    # Refused from the ReplicaSet's creation on; terminal once that lasted CREATE_REFUSED_SECONDS, within the bound.
    assert stop_after_rollout_start(quota, e2e_cluster, "k8s-demo:0.2") <= STOP_BOUND


def test_a_full_quota_is_rolled_back_and_only_0_1_answers(quota: Case, e2e_cluster: Cluster) -> None:
    assert quota.result["rollback"]["succeeded"] is True
    old_version_only(quota)
    assert len(live_pods(e2e_cluster, NS)) == REPLICAS


# make history: one line of cause per failed release.


def test_history_shows_the_cause_of_each_failed_release(quota: Case, e2e_project: Project) -> None:
    done = run(e2e_project, ["make", "history"])
    causes = [line.split("cause: ", 1)[1].split(" ", 1)[0] for line in done.stdout.splitlines() if "cause: " in line]
    # Newest first. The CPU case was not rolled back: no later update's message carries its cause, its stack tag does.
    expected = ["FailedCreate", "FailedScheduling", "ReadinessProbeFailed", "CrashLoopBackOff", "ErrImageNeverPull"]
    assert causes == expected, done.stdout


def test_the_figures_are_recorded(quota: Case) -> None:
    assert Path(RECORD).is_file()

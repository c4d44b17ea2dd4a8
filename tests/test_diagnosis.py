"""Classification of a failing rollout (ops/diagnosis.py) over pods, events and ReplicaSets recorded on the sandbox.

Each file of tests/data/diagnosis/ is what ``ops.cluster`` read on the sandbox's real node after the dev stack's
Deployment was changed to cause one failure (see tests/data/README.md): the ReplicaSets, the pods, the namespace's
events, ``since`` (when the rollout started), ``baselineRevision`` (the newest revision before it) and ``readAt``.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops import diagnosis
from ops.cluster import Refused
from ops.diagnosis import (
    CONFIG_ERROR_SECONDS,
    CRASH_LOOP_RESTARTS,
    CREATE_REFUSED_SECONDS,
    LOG_LINES,
    Diagnosis,
    Watcher,
    classify,
    timestamp,
)

DATA = Path(__file__).resolve().parent / "data" / "diagnosis"


def at(text: str) -> datetime:
    found = timestamp(text)
    assert found is not None
    return found


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")))


def classified(case: dict[str, Any], **changes: Any) -> Diagnosis:  # noqa: ANN401  # classify's keyword arguments
    arguments: dict[str, Any] = {
        "replica_sets": case["replicaSets"],
        "pods": case["pods"],
        "events": case["events"],
        "baseline_revision": case["baselineRevision"],
        "since": timestamp(case["since"]),
        "now": timestamp(case["readAt"]),
    }
    return classify(**{**arguments, **changes})


# One case per cause: (file, the first cause, pods it applies to, terminal, Kubernetes' words in its message).
CASES = [
    ("never-pull", "ErrImageNeverPull", 2, True, 'Container image "k8s-demo:0.9-missing" is not present'),
    ("invalid-name", "InvalidImageName", 2, True, "repository name (library/K8S-Demo) must be lowercase"),
    ("pull-backoff", "ImagePullBackOff", 2, False, 'Back-off pulling image "k8s-demo:0.9-missing"'),
    ("crash", "CrashLoopBackOff", 2, True, "back-off 20s restarting failed container=web"),
    ("config-error", "CreateContainerConfigError", 2, True, 'configmap "missing-config" not found'),
    ("run-error", "CrashLoopBackOff", 2, True, 'exec: "/nonexistent": stat /nonexistent: no such file'),
    ("readiness", "ReadinessProbeFailed", 2, False, "Readiness probe failed: HTTP probe failed with statuscode: 500"),
    ("unschedulable", "FailedScheduling", 2, False, "0/3 nodes are available: 1 Insufficient cpu"),
    ("quota", "FailedCreate", 2, True, "exceeded quota: pods-cap, requested: pods=1, used: pods=10"),
]


@pytest.mark.parametrize(("name", "cause", "pods", "terminal", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_recorded_failure_is_named_with_its_pods_and_kubernetes_message(
    name: str, cause: str, pods: int, terminal: bool, words: str
) -> None:
    found = classified(recorded(name))
    first = found.causes[0]
    assert (first.name, first.pods, first.terminal, found.terminal) == (cause, pods, terminal, terminal)
    assert words in first.message


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_the_new_replica_set_is_the_one_above_the_baseline(name: str) -> None:
    case = recorded(name)
    names = {rs["metadata"]["name"]: diagnosis.revision(rs) for rs in case["replicaSets"]}
    assert found_rs(case) == max(names, key=lambda n: names[n])


def found_rs(case: dict[str, Any]) -> str:
    return classified(case).replica_set


def test_a_sample_pod_belongs_to_the_new_replica_set() -> None:
    found = classified(recorded("never-pull"))
    assert found.causes[0].sample.startswith(f"{found.replica_set}-")


def test_a_crash_names_the_exit_code_and_the_termination_reason() -> None:
    first = classified(recorded("crash")).causes[0]
    assert (first.container, first.exit_code, first.reason) == ("web", 1, "Error")


def test_a_container_that_cannot_run_names_runcs_words() -> None:
    first = classified(recorded("run-error")).causes[0]
    assert (first.exit_code, first.reason) == (127, "ContainerCannotRun")


def test_liveness_failing_is_named_after_readiness() -> None:
    names = [cause.name for cause in classified(recorded("readiness")).causes]
    assert names == ["ReadinessProbeFailed", "LivenessProbeFailed"]


def test_nothing_is_found_when_no_revision_is_above_the_baseline() -> None:
    case = recorded("crash")
    newest = max(diagnosis.revision(rs) for rs in case["replicaSets"])
    assert classified(case, baseline_revision=newest) == Diagnosis()


def test_events_of_an_earlier_rollout_of_a_reused_replica_set_do_not_count() -> None:
    # The quota case reused the readiness case's ReplicaSet: that rollout's events stay in the namespace for an hour.
    case = recorded("quota")
    case["events"] = recorded("readiness")["events"] + case["events"]
    assert [cause.name for cause in classified(case).causes] == ["FailedCreate"]


def test_an_event_before_the_rollout_started_is_not_a_cause() -> None:
    case = recorded("quota")
    later = at(case["readAt"]) + timedelta(seconds=1)
    assert classified(case, since=later) == Diagnosis(replica_set=found_rs(case))


# The thresholds.


def with_restarts(case: dict[str, Any], restarts: int) -> dict[str, Any]:
    changed = copy.deepcopy(case)
    for pod in changed["pods"]:
        for status in pod["status"].get("containerStatuses") or []:
            status["restartCount"] = restarts
    return changed


def test_a_crash_loop_before_the_stated_restarts_keeps_waiting() -> None:
    assert not classified(with_restarts(recorded("crash"), CRASH_LOOP_RESTARTS - 1)).terminal


def test_a_crash_loop_at_the_stated_restarts_is_terminal() -> None:
    assert classified(with_restarts(recorded("crash"), CRASH_LOOP_RESTARTS)).terminal


def first_failed(case: dict[str, Any]) -> Any:  # noqa: ANN401  # a datetime
    pods = {p["metadata"]["name"] for p in case["pods"]}
    failed = [
        timestamp(e["firstTimestamp"])
        for e in case["events"]
        if e["reason"] == "Failed" and e["involvedObject"]["name"] in pods
    ]
    return min(t for t in failed if t is not None)


def test_a_config_error_younger_than_its_threshold_keeps_waiting() -> None:
    case = recorded("config-error")
    now = first_failed(case) + timedelta(seconds=CONFIG_ERROR_SECONDS - 1)
    assert not classified(case, now=now).terminal


def test_a_config_error_that_persisted_its_threshold_is_terminal() -> None:
    case = recorded("config-error")
    now = first_failed(case) + timedelta(seconds=CONFIG_ERROR_SECONDS)
    assert classified(case, now=now).terminal


def first_refused(case: dict[str, Any]) -> datetime:
    return min(at(e["firstTimestamp"]) for e in case["events"] if e["reason"] == "FailedCreate")


def test_pods_refused_for_less_than_the_threshold_keep_waiting() -> None:
    case = recorded("quota")
    now = first_refused(case) + timedelta(seconds=CREATE_REFUSED_SECONDS - 1)
    assert not classified(case, now=now).terminal


def test_pods_refused_for_the_threshold_are_terminal() -> None:
    case = recorded("quota")
    now = first_refused(case) + timedelta(seconds=CREATE_REFUSED_SECONDS)
    assert classified(case, now=now).terminal


def test_run_container_error_keeps_waiting() -> None:
    case = copy.deepcopy(recorded("run-error"))
    for pod in case["pods"]:
        for status in pod["status"].get("containerStatuses") or []:
            if "waiting" in status["state"]:
                status["state"] = {"waiting": {"reason": "RunContainerError", "message": "exec: not found"}}
    found = classified(case)
    assert ([c.name for c in found.causes], found.terminal) == (["RunContainerError"], False)


# Mixed: pods of one rollout failing in different ways.


def mixed(first: str, second: str) -> dict[str, Any]:
    """The new pods of ``first``, one of them replaced by one of ``second``'s, owned by ``first``'s ReplicaSet."""
    case = copy.deepcopy(recorded(first))
    other = recorded(second)
    new = max(case["replicaSets"], key=diagnosis.revision)
    other_new = max(other["replicaSets"], key=diagnosis.revision)
    uid = new["metadata"]["uid"]
    own = [p for p in case["pods"] if p["metadata"]["ownerReferences"][0]["uid"] == uid]
    foreign = copy.deepcopy(
        next(p for p in other["pods"] if p["metadata"]["ownerReferences"][0]["uid"] == other_new["metadata"]["uid"])
    )
    foreign["metadata"]["ownerReferences"][0]["uid"] = uid
    case["pods"] = [p for p in case["pods"] if p is not own[0]] + [foreign]
    case["events"] = case["events"] + [
        e for e in other["events"] if e["involvedObject"]["name"] == foreign["metadata"]["name"]
    ]
    case["since"] = min(case["since"], other["since"])
    return case


def test_mixed_causes_are_grouped_terminal_first() -> None:
    found = classified(mixed("unschedulable", "crash"))
    assert [(c.name, c.pods, c.terminal) for c in found.causes] == [
        ("CrashLoopBackOff", 1, True),
        ("FailedScheduling", 1, False),
    ]


def test_mixed_transient_causes_keep_waiting() -> None:
    found = classified(mixed("pull-backoff", "unschedulable"))
    assert ([c.name for c in found.causes], found.terminal) == (["FailedScheduling", "ImagePullBackOff"], False)


def test_one_terminal_pod_among_transient_ones_makes_the_rollout_terminal() -> None:
    assert classified(mixed("readiness", "never-pull")).terminal


# What make up prints and --json holds.


def test_the_headline_names_cause_pods_exit_code_and_message() -> None:
    first = classified(recorded("run-error")).causes[0]
    assert first.headline().startswith("CrashLoopBackOff (2 pods, exit code 127 (ContainerCannotRun)): failed to")


def test_a_crashs_headline_gives_its_last_log_line() -> None:
    found, _ = diagnosed(recorded("crash"))
    assert found.causes[0].headline() == (
        "CrashLoopBackOff (2 pods, exit code 1 (Error)): last log line: 2026/11/30 14:21:52 [emerg] 1#1: unknown "
        'directive "no_such_directive" in /etc/nginx/conf.d/default.conf:6'
    )


def test_the_printed_diagnosis_marks_each_cause_and_its_sample() -> None:
    lines = classified(recorded("unschedulable")).lines()
    assert lines[0].startswith("  - FailedScheduling (2 pods): 0/3 nodes are available: 1 Insufficient cpu")
    assert lines[0].endswith("[waiting]")
    assert lines[1].startswith("    sample pod: k8s-demo-deployment-57df5f9f7-")


def test_the_json_form_holds_every_field() -> None:
    document = classified(recorded("crash")).as_json()
    cause = document["causes"][0]  # type: ignore[index]
    assert (document["terminal"], cause["cause"], cause["exitCode"], cause["reason"], cause["log"]) == (
        True,
        "CrashLoopBackOff",
        1,
        "Error",
        [],
    )


# diagnose: reading the cluster, and what a refused read leaves out.


class FakeCluster:
    """Answers with a recorded case; ``refuse`` names reads that raise ``Refused``, as a 403 does."""

    def __init__(self, case: dict[str, Any], refuse: tuple[str, ...] = ()) -> None:
        self.case = case
        self.refuse = refuse
        self.logs: list[tuple[str, str | None, int, bool]] = []

    def _check(self, verb: str, resource: str) -> None:
        if f"{verb} {resource}" in self.refuse:
            raise Refused(verb=verb, resource=resource, namespace="k8s-demo-dev", status=403, message="forbidden")

    def replica_sets(self, selector: str) -> list[dict[str, Any]]:
        self._check("list", "replicasets")
        return list(self.case["replicaSets"])

    def deployment(self, name: str) -> dict[str, Any] | None:
        self._check("get", "deployments")
        return None

    def pods(self, selector: str) -> list[dict[str, Any]]:
        self._check("list", "pods")
        return list(self.case["pods"])

    def events(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        self._check("list", "events")
        return list(self.case["events"])

    def log(self, pod: str, *, container: str | None = None, tail_lines: int = 20, previous: bool = False) -> str:
        self._check("get", "pods/log")
        self.logs.append((pod, container, tail_lines, previous))
        return str(self.case.get("log", ""))

    def close(self) -> None:
        pass


def diagnosed(case: dict[str, Any], refuse: tuple[str, ...] = ()) -> tuple[Diagnosis, FakeCluster]:
    cluster = FakeCluster(case, refuse)
    found = diagnosis.diagnose(
        cluster,
        "app.kubernetes.io/instance=k8s-demo-dev,app.kubernetes.io/name=k8s-demo",
        baseline_revision=case["baselineRevision"],
        since=at(case["since"]),
        now=timestamp(case["readAt"]),
    )
    return found, cluster


def test_a_crash_gets_the_last_log_lines_of_its_previous_run_as_written() -> None:
    found, cluster = diagnosed(recorded("crash"))
    assert found.causes[0].log == (
        '2026/11/30 14:21:52 [emerg] 1#1: unknown directive "no_such_directive" in /etc/nginx/conf.d/default.conf:6',
    )
    assert cluster.logs == [(found.causes[0].sample, "web", LOG_LINES, True)]


def test_a_refused_log_read_names_its_permission_and_keeps_the_cause() -> None:
    found, _ = diagnosed(recorded("crash"), refuse=("get pods/log",))
    assert (found.causes[0].name, found.causes[0].log, found.refused) == ("CrashLoopBackOff", (), ("get pods/log",))


def test_refused_replica_sets_leave_nothing_to_tell_and_say_so() -> None:
    found, _ = diagnosed(recorded("crash"), refuse=("list replicasets",))
    assert found == Diagnosis(refused=("list replicasets",))
    assert not found.terminal


def test_refused_events_still_name_what_the_pods_show() -> None:
    found, _ = diagnosed(recorded("never-pull"), refuse=("list events",))
    assert ([c.name for c in found.causes], found.refused) == (["ErrImageNeverPull"], ("list events",))


def test_a_refused_read_is_printed_with_the_permission_it_needs() -> None:
    assert Diagnosis(refused=("list pods",)).lines() == [
        '  - not read: the cluster refused `list pods`; the namespace Role needs it (README, "Diagnostics: '
        'permissions")'
    ]


# The watcher.


def watch(case: dict[str, Any], connect: Callable[[], Any]) -> tuple[Watcher, list[Diagnosis]]:
    seen: list[Diagnosis] = []
    watcher = Watcher(connect, "selector", on_over=seen.append, interval=0.01, max_seconds=5)
    watcher.start()
    return watcher, seen


class Rolling(FakeCluster):
    """The cluster before the update (the first read, the baseline), then during its rollout."""

    def __init__(self, before: dict[str, Any], during: dict[str, Any]) -> None:
        super().__init__(before)
        self.during = during

    def replica_sets(self, selector: str) -> list[dict[str, Any]]:
        found = super().replica_sets(selector)
        self.case = self.during
        return found


def test_the_watcher_reports_a_terminal_cause_once() -> None:
    during = recorded("never-pull")
    before = dict(during, replicaSets=[rs for rs in during["replicaSets"] if diagnosis.revision(rs) <= 3])
    reported = threading.Event()
    seen: list[Diagnosis] = []

    def terminal(found: Diagnosis) -> None:
        seen.append(found)
        reported.set()

    watcher = Watcher(lambda: Rolling(before, during), "selector", on_over=terminal, interval=0.01, max_seconds=30)
    watcher.start()
    assert reported.wait(timeout=30)
    final = watcher.stop()
    assert ([c.name for c in final.causes], len(seen), watcher.baseline_revision) == (["ErrImageNeverPull"], 1, 3)


def test_a_watcher_that_cannot_read_the_replica_sets_says_which_permission() -> None:
    case = recorded("never-pull")
    watcher, seen = watch(case, lambda: FakeCluster(case, refuse=("list replicasets",)))
    assert (watcher.stop(), seen) == (Diagnosis(refused=("list replicasets",)), [])


def test_a_watcher_that_cannot_connect_never_stops_the_update() -> None:
    def unreachable() -> Any:  # noqa: ANN401
        raise OSError("connection refused")

    watcher, seen = watch(recorded("never-pull"), unreachable)
    assert (watcher.stop(), seen, watcher.problem) == (Diagnosis(), [], "OSError: connection refused")


# Kubernetes' progress deadline: the Deployment's own verdict ends the wait for a rollout that makes no progress.

TIMED_OUT = 'ReplicaSet "k8s-demo-deployment-5c9" has timed out progressing.'


def deployment(generation: int, observed: int, reason: str, message: str = TIMED_OUT) -> dict[str, Any]:
    """A Deployment as the API returns it, with its Progressing condition."""
    condition = {"type": "Progressing", "status": "False", "reason": reason, "message": message}
    return {
        "metadata": {"name": "k8s-demo-deployment", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": [condition]},
    }


def test_the_deadline_of_the_rollout_the_update_started_is_kubernetes_message() -> None:
    assert diagnosis.deadline_exceeded(deployment(5, 5, "ProgressDeadlineExceeded"), 4) == TIMED_OUT


def test_a_deadline_left_by_an_earlier_rollout_does_not_count() -> None:
    assert diagnosis.deadline_exceeded(deployment(4, 4, "ProgressDeadlineExceeded"), 4) is None


def test_a_deadline_not_yet_reobserved_after_the_change_does_not_count() -> None:
    assert diagnosis.deadline_exceeded(deployment(5, 4, "ProgressDeadlineExceeded"), 4) is None


def test_a_rollout_still_progressing_has_no_deadline() -> None:
    assert diagnosis.deadline_exceeded(deployment(5, 5, "ReplicaSetUpdated"), 4) is None


def test_no_deployment_has_no_deadline() -> None:
    assert diagnosis.deadline_exceeded(None, 0) is None


def test_the_baseline_generation_is_the_deployments_and_zero_for_none() -> None:
    assert (diagnosis.generation(deployment(7, 7, "x")), diagnosis.generation(None)) == (7, 0)


def test_a_diagnosis_past_the_deadline_is_over_but_not_terminal() -> None:
    found = Diagnosis(deadline=TIMED_OUT)
    assert (found.over, found.terminal, found.as_json()["progressDeadlineExceeded"]) == (True, False, TIMED_OUT)


def test_kubernetes_gave_up_only_when_no_cause_is_terminal() -> None:
    crash = classified(recorded("crash"))
    assert (Diagnosis(deadline=TIMED_OUT).gave_up, replace(crash, deadline=TIMED_OUT).gave_up, crash.gave_up) == (
        True,
        False,
        False,
    )


class Stuck(Rolling):
    """A rollout whose pods wait (no node has room) and whose Deployment passes its progress deadline."""

    def __init__(self, before: dict[str, Any], during: dict[str, Any], refuse: tuple[str, ...] = ()) -> None:
        super().__init__(before, during)
        self.refuse = refuse
        self.deployment_reads = 0

    def deployment(self, name: str) -> dict[str, Any] | None:
        self._check("get", "deployments")
        self.deployment_reads += 1
        # The first read is the baseline (generation 4); the third poll finds the deadline passed.
        if self.deployment_reads == 1:
            return deployment(4, 4, "NewReplicaSetAvailable", "")
        return deployment(5, 5, "ProgressDeadlineExceeded" if self.deployment_reads >= 4 else "ReplicaSetUpdated")


def stuck_case() -> tuple[dict[str, Any], dict[str, Any]]:
    # No room on a node: the pods' own status says so (the watcher counts only events newer than its start).
    during = recorded("unschedulable")
    old = [rs for rs in during["replicaSets"] if diagnosis.revision(rs) <= during["baselineRevision"]]
    return dict(during, replicaSets=old), during


def test_the_watcher_ends_the_wait_once_kubernetes_gave_up() -> None:
    before, during = stuck_case()
    cluster = Stuck(before, during)
    ended = threading.Event()
    seen: list[Diagnosis] = []

    def over(found: Diagnosis) -> None:
        seen.append(found)
        ended.set()

    watcher = Watcher(
        lambda: cluster, "selector", deployment="k8s-demo-deployment", on_over=over, interval=0.01, max_seconds=30
    )
    watcher.start()
    assert ended.wait(timeout=30)
    final = watcher.stop()
    assert (len(seen), final.deadline, final.terminal, [c.name for c in final.causes], watcher.baseline_generation) == (
        1,
        TIMED_OUT,
        False,
        ["FailedScheduling"],
        4,
    )


def test_a_watcher_refused_the_deployment_waits_on_and_names_get_deployments() -> None:
    before, during = stuck_case()
    cluster = Stuck(before, during, refuse=("get deployments",))
    seen: list[Diagnosis] = []
    watcher = Watcher(
        lambda: cluster, "selector", deployment="k8s-demo-deployment", on_over=seen.append, interval=0.01, max_seconds=5
    )
    watcher.start()
    time.sleep(0.3)
    final = watcher.stop()
    assert (seen, final.deadline, final.refused, [c.name for c in final.causes]) == (
        [],
        "",
        ("get deployments",),
        ["FailedScheduling"],
    )

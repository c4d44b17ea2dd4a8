"""Releases a person can read and undo, for real: make history, make rollback, make up's automatic rollback.

A stack of its own (``releases``, namespace ``k8s-demo-releases``, the dev
rollout shape) in the suite's project copy and cluster. The steps build on
each other in file order: three releases, rollback to release 1, rollback to
a tag, a refused rollback, a failed rollout rolled back automatically, and one
left as Pulumi leaves it. Every tag is deployed without being built, as kwok's
simulated pods need no image, and the image check looks in the sandbox's
engine, which has none of them: rollbacks pass ``--no-image-check`` (the check
itself is unit-tested).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi import automation as auto

from tests.e2e.operator import make
from tests.e2e.sandbox import (
    BROKEN_SUFFIX,
    MAX_SURGE,
    MAX_UNAVAILABLE,
    MIN_READY_SECONDS,
    REPLICAS,
    Cluster,
    Project,
    RolloutWatcher,
)
from tests.e2e.test_e2e import DEPLOYMENT, SHORT_POD_READY, image, pod_images, rollout_complete

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox("kwok's simulated pods: it deploys tags that were never built, and `-broken` ones"),
]

STACK = "releases"
NS = f"k8s-demo-{STACK}"
NO_IMAGE_CHECK = "ARGS=--no-image-check"


def history(project: Project) -> list[dict[str, Any]]:
    """``make history JSON=1``: the releases, newest first."""
    done = make(project, "history", f"STACK={STACK}", "JSON=1")
    assert done.returncode == 0, done.stderr
    # make echoes its recipe lines first; the JSON is the rest.
    return list(json.loads(done.stdout[done.stdout.index("\n[") + 1 :]))


def config_tag(stack: auto.Stack) -> str:
    return stack.get_config("imageTag").value


@dataclass
class Step:
    """One operator command: how it ended, and what the watcher saw meanwhile."""

    done: subprocess.CompletedProcess[str]
    watcher: RolloutWatcher


def watched(project: Project, cluster: Cluster, *args: str) -> Step:
    with RolloutWatcher(cluster, NS, DEPLOYMENT) as watcher:
        done = make(project, *args, f"STACK={STACK}")
    return Step(done, watcher)


@pytest.fixture(scope="module")
def stack(e2e_project: Project) -> auto.Stack:
    created = e2e_project.stack(STACK)
    # The dev rollout shape, so availability bounds mean the same as in the rest of the suite.
    created.set_config("replicas", auto.ConfigValue(str(REPLICAS)))
    created.set_config("maxSurge", auto.ConfigValue(str(MAX_SURGE)))
    created.set_config("maxUnavailable", auto.ConfigValue(str(MAX_UNAVAILABLE)))
    created.set_config("minReadySeconds", auto.ConfigValue(str(MIN_READY_SECONDS)))
    return created


@pytest.fixture(scope="module")
def three_releases(stack: auto.Stack, e2e_project: Project) -> list[dict[str, Any]]:
    for tag in ("0.1", "0.2", "0.3"):
        stack.set_config("imageTag", auto.ConfigValue(tag))
        done = make(e2e_project, "up", f"STACK={STACK}", "ARGS=--yes")
        assert done.returncode == 0, done.stderr
    return history(e2e_project)


def test_history_numbers_three_releases_newest_first(three_releases: list[dict[str, Any]]) -> None:
    assert [(r["release"], r["imageTag"], r["result"]) for r in three_releases] == [
        (3, "0.3", "succeeded"),
        (2, "0.2", "succeeded"),
        (1, "0.1", "succeeded"),
    ]


def test_history_table_has_a_row_per_release(three_releases: list[dict[str, Any]], e2e_project: Project) -> None:
    done = make(e2e_project, "history", f"STACK={STACK}")
    rows = [line.split()[0] for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert rows == ["3", "2", "1"]


# make rollback TO=1


@dataclass
class Rollback:
    step: Step
    history: list[dict[str, Any]]
    config_tag: str


@pytest.fixture(scope="module")
def rollback_to_1(three_releases: list[dict[str, Any]], stack: auto.Stack, e2e_project: Project) -> Rollback:
    step = watched(e2e_project, e2e_project.cluster, "rollback", "TO=1", NO_IMAGE_CHECK)
    return Rollback(step, history(e2e_project), config_tag(stack))


def test_rollback_to_1_succeeds(rollback_to_1: Rollback) -> None:
    assert rollback_to_1.step.done.returncode == 0, rollback_to_1.step.done.stderr


def test_rollback_to_1_runs_its_tag_on_every_pod(rollback_to_1: Rollback, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster, namespace=NS)
    assert pod_images(e2e_cluster, NS) == [image("0.1")] * REPLICAS


def test_rollback_to_1_is_a_fourth_release(rollback_to_1: Rollback) -> None:
    newest = rollback_to_1.history[0]
    assert (newest["release"], newest["imageTag"], newest["result"]) == (4, "0.1", "succeeded")


def test_rollback_to_1_sets_the_config(rollback_to_1: Rollback) -> None:
    assert rollback_to_1.config_tag == "0.1"


def test_rollback_to_1_keeps_availability(rollback_to_1: Rollback) -> None:
    assert rollback_to_1.step.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE


def test_rollback_says_what_changed(rollback_to_1: Rollback) -> None:
    assert "Rolled back stack releases to tag 0.1 (release 1), recorded as release 4." in rollback_to_1.step.done.stdout
    assert "imageTag: 0.3 -> 0.1" in rollback_to_1.step.done.stdout


# make rollback TO=<tag>


@pytest.fixture(scope="module")
def rollback_to_tag(rollback_to_1: Rollback, stack: auto.Stack, e2e_project: Project) -> Rollback:
    step = watched(e2e_project, e2e_project.cluster, "rollback", "TO=0.2", NO_IMAGE_CHECK)
    return Rollback(step, history(e2e_project), config_tag(stack))


def test_rollback_to_a_tag_runs_it(rollback_to_tag: Rollback, e2e_cluster: Cluster) -> None:
    assert rollback_to_tag.step.done.returncode == 0, rollback_to_tag.step.done.stderr
    assert pod_images(e2e_cluster, NS) == [image("0.2")] * REPLICAS
    assert rollback_to_tag.config_tag == "0.2"


def test_rollback_to_a_tag_is_a_fifth_release(rollback_to_tag: Rollback) -> None:
    assert [r["imageTag"] for r in rollback_to_tag.history[:2]] == ["0.2", "0.1"]
    assert rollback_to_tag.history[0]["release"] == 5


# A refused rollback changes nothing.


@dataclass
class Refused:
    done: subprocess.CompletedProcess[str]
    releases_before: int
    releases_after: int


@pytest.fixture(scope="module")
def refused(rollback_to_tag: Rollback, e2e_project: Project) -> Refused:
    done = make(e2e_project, "rollback", f"STACK={STACK}", "TO=2", NO_IMAGE_CHECK)
    return Refused(done, len(rollback_to_tag.history), len(history(e2e_project)))


def test_rolling_back_to_the_running_tag_is_refused(refused: Refused) -> None:
    assert refused.done.returncode != 0
    assert "error: tag 0.2 is already running (release 5); nothing to roll back\nNothing was changed." in (
        refused.done.stderr
    )


def test_a_refused_rollback_records_no_release(refused: Refused) -> None:
    assert refused.releases_after == refused.releases_before


# A failed rollout, rolled back by make up (rollbackOnFailure true, the default).


@dataclass
class FailedUp:
    step: Step
    history: list[dict[str, Any]]
    config_tag: str


def failed_up(stack: auto.Stack, project: Project, tag: str) -> FailedUp:
    stack.set_config("podReadyTimeoutSeconds", auto.ConfigValue(str(SHORT_POD_READY)))
    stack.set_config("imageTag", auto.ConfigValue(tag))
    step = watched(project, project.cluster, "up", "ARGS=--yes")
    return FailedUp(step, history(project), config_tag(stack))


@pytest.fixture(scope="module")
def auto_rollback(refused: Refused, stack: auto.Stack, e2e_project: Project) -> FailedUp:
    return failed_up(stack, e2e_project, f"0.4{BROKEN_SUFFIX}")


def test_failed_rollout_fails_make_up(auto_rollback: FailedUp) -> None:
    assert auto_rollback.step.done.returncode != 0


def test_failed_rollout_message_says_what_why_and_what_now(auto_rollback: FailedUp) -> None:
    message = auto_rollback.step.done.stderr
    assert "error: release 6 (tag 0.4-broken) failed: ProgressDeadlineExceeded" in message
    assert "Rolled back to release 5 (tag 0.2), recorded as release 7: the rollout completed" in message
    assert "To release again:" in message


def test_failed_rollout_is_rolled_back_on_every_pod(auto_rollback: FailedUp, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster, namespace=NS)
    assert pod_images(e2e_cluster, NS) == [image("0.2")] * REPLICAS


def test_availability_held_through_failure_and_rollback(auto_rollback: FailedUp) -> None:
    assert auto_rollback.step.watcher.errors == []
    assert auto_rollback.step.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE


def test_the_broken_tag_was_really_tried(auto_rollback: FailedUp) -> None:
    # Guards the test above: the watcher saw the broken pods next to the old ones.
    assert any(image(f"0.4{BROKEN_SUFFIX}") in s.images for s in auto_rollback.step.watcher.samples)


def test_auto_rollback_sets_the_config_back(auto_rollback: FailedUp) -> None:
    assert auto_rollback.config_tag == "0.2"


def test_auto_rollback_records_the_failure_and_the_rollback(auto_rollback: FailedUp) -> None:
    assert [(r["release"], r["imageTag"], r["result"]) for r in auto_rollback.history[:2]] == [
        (7, "0.2", "succeeded"),
        (6, "0.4-broken", "failed"),
    ]


# The same failure with rollbackOnFailure false: Pulumi's own behaviour.


@pytest.fixture(scope="module")
def no_auto_rollback(auto_rollback: FailedUp, stack: auto.Stack, e2e_project: Project) -> FailedUp:
    stack.set_config("rollbackOnFailure", auto.ConfigValue("false"))
    return failed_up(stack, e2e_project, f"0.5{BROKEN_SUFFIX}")


def test_without_auto_rollback_make_up_fails_and_says_so(no_auto_rollback: FailedUp) -> None:
    assert no_auto_rollback.step.done.returncode != 0
    assert "rollbackOnFailure is false: nothing was rolled back" in no_auto_rollback.step.done.stderr


def test_without_auto_rollback_nothing_is_rolled_back(no_auto_rollback: FailedUp) -> None:
    assert no_auto_rollback.config_tag == f"0.5{BROKEN_SUFFIX}"
    newest = no_auto_rollback.history[0]
    assert (newest["release"], newest["imageTag"], newest["result"]) == (8, f"0.5{BROKEN_SUFFIX}", "failed")


def test_without_auto_rollback_the_old_pods_keep_serving(no_auto_rollback: FailedUp, e2e_cluster: Cluster) -> None:
    assert no_auto_rollback.step.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE
    assert pod_images(e2e_cluster, NS).count(image("0.2")) >= REPLICAS - MAX_UNAVAILABLE

"""A canary release's records and checks: what history says of each canary, and when a canary pod fails."""

from __future__ import annotations

from datetime import datetime

from pulumi import automation as auto

from components.settings import Settings, StackConfig, load_settings
from ops import diagnosis
from ops.preview.comment import canary_rows
from ops.releases.canary import is_ready, pod_problem
from ops.releases.model import (
    CANARY_TAG_KEY,
    IMAGE_TAG_KEY,
    Release,
    auto_rollback_target,
    canary_aborted,
    canary_promoted,
    canary_stage1,
    release_message,
    releases,
    table,
)
from project import NAME
from tests.examples import example_config
from tests.releases_fakes import no_git, update


def entry(start: str, *, tag: str, canary: str = "", message: str, result: str = "succeeded") -> auto.UpdateSummary:
    """A history entry with the config a canary release records (``canaryImageTag``)."""
    config = {IMAGE_TAG_KEY: {"value": tag, "secret": False}, CANARY_TAG_KEY: {"value": canary, "secret": False}}
    return auto.UpdateSummary(
        kind="update",
        start_time=datetime.strptime(f"2026-11-27 {start}", "%Y-%m-%d %H:%M"),
        message=message,
        environment={},
        config=config,
        result=result,
    )


STABLE = update("10:00", tag="0.1", message=release_message("pulumi up", "k8s-demo", "0.1", "prod"))


def stage1(start: str, new: str = "0.2") -> auto.UpdateSummary:
    message = release_message(canary_stage1("1 of 5 pods, 20% of traffic beside 0.1"), "k8s-demo", new, "prod")
    return entry(start, tag="0.1", canary="app/VERSION", message=message)


def aborted(start: str) -> auto.UpdateSummary:
    reason = "error rate 100.0% is 100.0 points above the stable pods' 0.0% (at most 1 allowed)"
    return entry(start, tag="0.1", message=release_message(canary_aborted("0.2", reason), "k8s-demo", "0.1", "prod"))


def promoted(start: str) -> auto.UpdateSummary:
    message = release_message(canary_promoted("within bounds"), "k8s-demo", "0.2", "prod")
    return entry(start, tag="app/VERSION", message=message)


def test_a_canarys_stage1_releases_the_canarys_tag() -> None:
    found = releases([STABLE, stage1("10:01")], no_git)
    assert (found[1].image_tag, found[1].recorded_tag) == ("0.2", "0.1")


def test_an_aborted_canary_is_a_failed_release_with_its_figures() -> None:
    found = releases([STABLE, stage1("10:01"), aborted("10:02")], no_git)
    assert (found[1].result, found[1].canary) == (
        "failed",
        "aborted in release 3: error rate 100.0% is 100.0 points above the stable pods' 0.0% (at most 1 allowed)",
    )


def test_the_abort_itself_is_a_release_of_the_last_good_tag() -> None:
    found = releases([STABLE, stage1("10:01"), aborted("10:02")], no_git)
    assert (found[2].image_tag, found[2].result, found[2].canary) == ("0.1", "succeeded", "")


def test_a_promoted_canary_succeeded() -> None:
    found = releases([STABLE, stage1("10:01"), promoted("10:02")], no_git)
    assert [(r.image_tag, r.result, r.canary) for r in found[1:]] == [
        ("0.2", "succeeded", "promoted in release 3"),
        ("0.2", "succeeded", ""),
    ]


def test_a_canary_still_running_or_interrupted_is_not_a_success() -> None:
    found = releases([STABLE, stage1("10:01")], no_git)
    assert (found[1].result, found[1].canary) == (
        "in canary",
        "running or interrupted: the next make up finishes it",
    )


def test_an_interrupted_canary_names_the_release_that_finished_it() -> None:
    found = releases([STABLE, stage1("10:01"), stage1("10:05"), promoted("10:06")], no_git)
    assert [(r.result, r.canary) for r in found[1:3]] == [
        ("interrupted", "interrupted; finished by release 3"),
        ("succeeded", "promoted in release 4"),
    ]


def test_the_automatic_rollback_never_picks_an_aborted_or_undecided_canary() -> None:
    for history in ([STABLE, stage1("10:01"), aborted("10:02")], [STABLE, stage1("10:01")]):
        before = [r for r in releases(history, no_git) if r.canary]
        target = auto_rollback_target([releases([STABLE], no_git)[0], *before], "0.3").release
        assert (target.number if isinstance(target, Release) else None) == 1


def test_history_table_has_a_canary_column_once_a_canary_ran() -> None:
    lines = table(releases([STABLE, stage1("10:01"), aborted("10:02")], no_git)).splitlines()
    assert (lines[0].split()[:8], lines[2].split()[3:9]) == (
        ["RELEASE", "TIME", "(UTC)", "IMAGE", "TAG", "RESULT", "COMMIT", "CANARY"],
        ["0.2", "failed", "aborted", "in", "release", "3"],
    )


def test_history_table_without_a_canary_has_no_canary_column() -> None:
    assert "CANARY" not in table(releases([STABLE], no_git))


# A canary pod that will not serve.


def pod(**status: object) -> dict[str, object]:
    return {"metadata": {"name": "canary-1"}, "status": status}


def test_a_restarted_container_is_a_crash() -> None:
    found = pod(
        containerStatuses=[
            {"restartCount": 1, "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}, "state": {}}
        ]
    )
    assert pod_problem(found) == "canary pod canary-1 crashed: Error (exit code 1)"


def test_crash_loop_back_off_is_named() -> None:
    found = pod(
        containerStatuses=[
            {"restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}}
        ]
    )
    assert pod_problem(found) == "canary pod canary-1: CrashLoopBackOff: back-off 10s"


def test_every_cause_the_diagnosis_names_is_a_canary_problem() -> None:
    reasons = sorted(diagnosis.WAITING_CAUSES)
    found = [
        pod_problem(pod(containerStatuses=[{"restartCount": 0, "state": {"waiting": {"reason": r, "message": "m"}}}]))
        for r in reasons
    ]
    assert found == [f"canary pod canary-1: {r}: m" for r in reasons]


def test_a_pulling_pod_is_no_problem_yet() -> None:
    found = pod(containerStatuses=[{"restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert pod_problem(found) is None


def test_ready_is_the_ready_condition() -> None:
    assert (is_ready(pod(conditions=[{"type": "Ready", "status": "True"}])), is_ready(pod(conditions=[]))) == (
        True,
        False,
    )


# The PR comment's rollout plan shows the canary stage.


def settings_of(stack: str) -> Settings:
    return load_settings(StackConfig(NAME, example_config(stack)), project=NAME, stack=stack, app_version="0.2")


def test_the_rollout_plan_shows_prods_canary_stage() -> None:
    # prod: 4 replicas, 1 canary pod; ready budget 60 + 10 s; the default window, 500 ms p99.
    assert canary_rows(settings_of("prod")) == [
        "| canary stage (`make up`) | 1 canary pod(s) beside 4: 20% of requests, before the rollout above |",
        "| canary analysis | 120 s; errors at most 1 point(s) above the stable pods'; p99 at most 500 ms; "
        "at least 50 requests (probes make up the rest) |",
        "| most time the canary adds | 190 s (ready 70 s + analysis 120 s) |",
    ]


def test_a_rolling_stack_has_no_canary_stage() -> None:
    assert canary_rows(settings_of("dev")) == []

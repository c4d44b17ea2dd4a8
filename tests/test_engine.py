"""``ops.engine``: reports built from engine events, recorded from real previews and updates in the sandbox.

The recordings (tools/capture_engine_events.py, see tests/data/README.md) are
parsed by the Automation API's own parser (``read_events``), as the live
``on_event`` stream is.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from pulumi import automation as auto

from ops import engine
from ops.diagnosis import PROGRESS_DEADLINE
from ops.releases.command import PulumiStack
from project import DEPLOYMENT_TYPE, IMAGE_TYPE, STACK_TYPE
from tests.releases_fakes import EventStack, diagnostic_event, step_event, step_failed_event

DATA = Path(__file__).parent / "data"


def recorded(path: str) -> engine.Report:
    """The report of the events recorded in ``tests/data/<path>``."""
    return engine.report_from_events(engine.read_events((DATA / path).read_text(encoding="utf-8").splitlines()))


def the_deployment(report: engine.Report, op: str) -> engine.Step:
    return next(step for step in report.steps if step.type == DEPLOYMENT_TYPE and step.op == op)


# Previews


def test_a_preview_reports_each_step_with_both_states() -> None:
    report = recorded("pr_comment/release.events.jsonl")
    update = the_deployment(report, "update")
    containers = update.inputs("new")["spec"]["template"]["spec"]["containers"]
    assert (containers[0]["image"], update.old is not None) == ("k8s-demo:0.2", True)
    assert "spec.template.spec.containers[0].image" in update.detailed_diff


def test_a_preview_with_a_refresh_reads_each_resource_first() -> None:
    report = recorded("pr_comment/release.events.jsonl")
    refreshed = {step.type for step in report.steps if step.op == "refresh"}
    assert DEPLOYMENT_TYPE in refreshed


def test_a_preview_reports_the_config_the_engine_ran_with() -> None:
    assert recorded("pr_comment/release.events.jsonl").config["k8s-demo:imageTag"] == "0.2"


def test_a_passing_preview_reports_its_summary_and_policy_pack() -> None:
    report = recorded("pr_comment/release.events.jsonl")
    assert (report.failed, report.changes().get("update"), report.policy_packs) == (False, 1, ("k8s-demo",))


def test_a_policy_violation_is_reported_once_with_its_resource() -> None:
    report = recorded("pr_comment/policy-violation.events.jsonl")
    assert [(v.policy, v.enforcement, v.urn.rsplit("::", 1)[-1]) for v in report.policy_violations] == [
        ("replicas-outside-dev", "mandatory", "web-deployment")
    ]
    assert report.failed


def test_a_program_that_refuses_its_config_fails_the_preview() -> None:
    report = recorded("pr_comment/failed-config.events.jsonl")
    assert report.failed
    assert any("invalid configuration for stack 'staging' (3 problems)" in item.message for item in report.errors)


# Updates


def test_a_successful_release_reports_its_changes_and_no_error() -> None:
    report = recorded("engine/up-release.events.jsonl")
    assert (report.failed, report.errors, report.changes().get("update")) == (False, [], 1)


def test_an_update_reports_the_state_each_step_produced() -> None:
    update = the_deployment(recorded("engine/up-release.events.jsonl"), "update")
    assert update.result is not None
    assert update.result.outputs["spec"]["template"]["spec"]["containers"][0]["image"] == "k8s-demo:0.2"


def test_a_failed_rollout_is_the_deployments_failed_update() -> None:
    report = recorded("engine/up-failed-rollout.events.jsonl")
    update = the_deployment(report, "update")
    assert (report.failed, update.failed) == (True, True)
    assert [item.severity for item in report.diagnostics_on(update.urn) if not item.ephemeral] != []


def test_the_verdict_of_the_recorded_failed_rollout_is_the_recorded_deployments_status() -> None:
    report = recorded("engine/up-failed-rollout.events.jsonl")
    state = json.loads((DATA / "engine" / "up-failed-rollout.state.json").read_text(encoding="utf-8"))
    outcome = PulumiStack(cast(auto.Stack, EventStack([], state))).outcome(report)
    assert outcome.rollout is not None
    assert outcome.rollout.reason == PROGRESS_DEADLINE
    assert str(outcome.rollout).startswith('ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-')
    assert str(outcome.rollout).endswith('" has timed out progressing.')


# How events make a report


URN = "urn:pulumi:dev::k8s-demo::k8s-demo:index:WebApp$kubernetes:apps/v1:Deployment::web-deployment"
IMAGE_URN = "urn:pulumi:dev::k8s-demo::k8s-demo:index:AppImage$docker:index/image:Image::app-image-build"


def test_a_failure_completes_the_latest_step_of_its_resource_and_op() -> None:
    report = engine.report_from_events(
        [
            step_event(auto.OpType.REFRESH, DEPLOYMENT_TYPE, URN),
            step_event(auto.OpType.UPDATE, DEPLOYMENT_TYPE, URN),
            step_failed_event(auto.OpType.UPDATE, DEPLOYMENT_TYPE, URN),
        ]
    )
    assert [(step.op, step.failed) for step in report.steps] == [("refresh", False), ("update", True)]


def test_colour_markup_is_left_out_of_messages() -> None:
    report = engine.report_from_events([diagnostic_event(URN, "<{%fg 1%}>error: <{%reset%}>it failed<{%reset%}>\n")])
    assert report.diagnostics[0].message == "error: it failed\n"


def test_without_a_summary_the_operation_did_not_finish() -> None:
    assert engine.report_from_events([step_event(auto.OpType.CREATE, STACK_TYPE, "urn:pulumi:dev::k8s-demo::s")]).failed


def test_errors_are_kept_by_resource() -> None:
    report = engine.report_from_events(
        [diagnostic_event(IMAGE_URN, "push refused", severity="error"), diagnostic_event(URN, "progress")]
    )
    assert [item.message for item in report.diagnostics_on(IMAGE_URN)] == ["push refused"]
    assert [item.urn for item in report.errors] == [IMAGE_URN]
    assert IMAGE_TYPE in IMAGE_URN


class PreviewingStack:
    """An Automation API stack whose ``preview`` records its options and reports nothing."""

    def __init__(self) -> None:
        self.options: dict[str, object] = {}

    def preview(self, **options: object) -> None:
        self.options = options


def test_a_preview_can_read_another_config_file(tmp_path: Path) -> None:
    stack = PreviewingStack()
    engine.preview(cast(auto.Stack, stack), config_file=tmp_path / "Pulumi.prod.yaml")
    assert stack.options["config_file"] == str(tmp_path / "Pulumi.prod.yaml")


def test_a_preview_reads_the_stacks_own_config_file_by_default() -> None:
    stack = PreviewingStack()
    engine.preview(cast(auto.Stack, stack))
    assert stack.options["config_file"] is None


class ReadingStack:
    """Like ``Stack.up``: replays the update's events, then reads the outputs and the newest history entry."""

    name = "dev"

    def __init__(self, events: list[auto.EngineEvent]) -> None:
        self.events = events

    def up(self, **options: object) -> None:
        on_event = cast(Callable[[auto.EngineEvent], None], options["on_event"])
        for event in self.events:
            on_event(event)
        self.outputs()
        self.info(True)

    def outputs(self) -> auto.OutputMap:
        raise AssertionError("the outputs were read after the update: a CLI run of its own")

    def info(self, show_secrets: bool = True) -> auto.UpdateSummary | None:
        raise AssertionError("the history was read after the update: a CLI run of its own")


def release_events() -> list[auto.EngineEvent]:
    return engine.read_events((DATA / "engine/up-release.events.jsonl").read_text(encoding="utf-8").splitlines())


def test_an_update_reads_neither_outputs_nor_history_after_it() -> None:
    report = engine.up(cast(auto.Stack, ReadingStack(release_events())), message="m")
    assert (report.command_failed, report.changes().get("update")) == (False, 1)


def test_the_stack_reads_its_outputs_again_after_the_update() -> None:
    stack = ReadingStack(release_events())
    engine.up(cast(auto.Stack, stack), message="m")
    with pytest.raises(AssertionError, match="outputs were read"):
        stack.outputs()


# Stopping a running update: Ctrl-C to the `pulumi up` the Automation API started.


#: The stand-in CLI's script: it waits, and on SIGINT exits 130, as the CLI does once it has cancelled.
WAIT_FOR_INTERRUPT = "trap 'kill %1; exit 130' INT; echo ready; sleep 30 & wait"


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    """An executable named ``pulumi``: a copy of bash, so the process's own name and argv[0] are ``pulumi``."""
    copy = tmp_path / "pulumi"
    shutil.copy2(shutil.which("bash") or "/bin/bash", copy)
    return copy


def started(fake_cli: Path, *args: str) -> subprocess.Popen[str]:
    cli = subprocess.Popen([str(fake_cli), "-c", WAIT_FOR_INTERRUPT, *args], stdout=subprocess.PIPE, text=True)
    assert cli.stdout is not None
    assert cli.stdout.readline() == "ready\n"
    return cli


def test_cancel_interrupts_the_pulumi_up_child(fake_cli: Path) -> None:
    with started(fake_cli, "--non-interactive", "up", "--yes") as cli:
        assert engine.cancel_update() is True
        assert cli.wait(timeout=10) == 130


def test_cancel_leaves_other_pulumi_commands_alone(fake_cli: Path) -> None:
    with started(fake_cli, "preview") as cli:
        assert engine.cancel_update() is False
        assert cli.poll() is None
        cli.send_signal(signal.SIGINT)
        cli.wait(timeout=10)


def test_cancel_without_an_update_running_does_nothing() -> None:
    assert engine.cancel_update() is False

"""The release commands against a fake stack: what they print, what they change, what they refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from pulumi import automation as auto

from ops import engine, update_flags
from ops.cluster import Cluster
from ops.cluster import Target as ClusterTarget
from ops.diagnosis import PROGRESS_DEADLINE, Cause, Diagnosis
from ops.image_check import ImageCheck
from ops.releases.__main__ import main
from ops.releases.command import (
    PulumiStack,
    UpOutcome,
    history_command,
    rollback_command,
    stop_reason,
    stopped_verdict,
    up_command,
)
from ops.releases.model import IMAGE_TAG_KEY, Refusal, RolloutFailure
from project import DEPLOYMENT_TYPE, IMAGE_TYPE, config_key
from tests.examples import example_config
from tests.releases_fakes import (
    EventStack,
    FakeStack,
    diagnostic_event,
    no_git,
    step_event,
    step_failed_event,
    update,
)

APP_VERSION = "0.9"
DEADLINE = RolloutFailure(PROGRESS_DEADLINE, 'ReplicaSet "k8s-demo-deployment-7d9" has timed out progressing.')
OK = UpOutcome(True, {"update": 1, "same": 6})
ROLLOUT_FAILED = UpOutcome(False, rollout=DEADLINE)
OTHER_FAILURE = UpOutcome(False)
#: What a read-only registry's refusal leaves on the image (recorded in the sandbox).
PUSH_REFUSED = UpOutcome(
    False,
    image_errors=[
        "error reading push output: error parsing HTTP 405 response body: "
        "invalid character 'M' looking for beginning of value: \"Method not allowed\\n\"\n"
    ],
)
BUILD_FAILED = UpOutcome(
    False, image_errors=["error reading build output: executor failed running [/bin/sh -c exit 3]: exit code: 3"]
)


def exists(repository: str, tag: str) -> str | None:
    return None


def missing(repository: str, tag: str) -> str | None:
    return f"{repository}:{tag} is not an image in the default Docker engine"


def three_releases() -> FakeStack:
    return FakeStack([update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.3")])


def rollback(stack: FakeStack, value: str, check: ImageCheck | None = exists) -> int:
    return rollback_command(stack, value, app_version=APP_VERSION, app_version_at=no_git, check=check)


def up(stack: FakeStack, *, confirm: bool | None = None) -> int:
    answer = None if confirm is None else (lambda: confirm)
    return up_command(stack, app_version=APP_VERSION, app_version_at=no_git, confirm=answer)


# history


def test_history_json_lists_releases_newest_first(capsys: pytest.CaptureFixture[str]) -> None:
    history_command(three_releases(), no_git, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert [(r["release"], r["imageTag"]) for r in printed] == [(3, "0.3"), (2, "0.2"), (1, "0.1")]


def test_history_of_a_new_stack_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    history_command(FakeStack([]), no_git, as_json=False)
    assert capsys.readouterr().out == "stack dev has no release yet: `make up` makes the first\n"


# rollback


def test_rollback_to_a_number_sets_its_tag_then_updates() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    assert rollback(stack, "1") == 0
    assert stack.calls == ["set imageTag=0.1", "up"]


def test_rollback_to_a_tag_sets_that_tag() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    rollback(stack, "0.0.7")
    assert stack.values[IMAGE_TAG_KEY] == "0.0.7"


def test_rollback_prints_what_changed(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.3"
    stack.outcomes = [OK]
    rollback(stack, "1")
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "Rolled back stack dev to tag 0.1 (release 1), recorded as release 4.",
        "  imageTag: 0.3 -> 0.1",
        "  resources: 6 same, 1 update",
    ]


def test_rollback_records_what_it_deploys_as_the_message() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    rollback(stack, "1")
    assert stack.messages == ["rollback to release 1: image k8s-demo:0.1, stack dev"]


def test_a_failed_rollback_says_so_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.outcomes = [ROLLOUT_FAILED]
    assert rollback(stack, "1") == 1
    assert "error: the rollback to 0.1 failed (release 4): ProgressDeadlineExceeded" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("7", "there is no release 7"),
        ("3", "tag 0.3 is already running"),
        ("not a tag", "neither a release number"),
    ],
)
def test_a_refused_rollback_changes_nothing(value: str, refusal: str) -> None:
    stack = three_releases()
    with pytest.raises(Refusal, match=refusal):
        rollback(stack, value)
    assert stack.calls == []


def test_a_failed_release_is_refused_and_changes_nothing() -> None:
    stack = FakeStack([update("10:01", tag="0.1"), update("10:02", tag="0.2-broken", result="failed")])
    with pytest.raises(Refusal, match=r"release 2 \(tag 0\.2-broken\) failed"):
        rollback(stack, "2")
    assert stack.calls == []


def test_a_tag_missing_where_the_cluster_pulls_is_refused_and_changes_nothing() -> None:
    stack = three_releases()
    with pytest.raises(Refusal, match=r"^k8s-demo:0\.1 is not an image in the default Docker engine$"):
        rollback(stack, "1", check=missing)
    assert stack.calls == []


def test_the_image_check_gets_the_stack_repository_and_the_tag() -> None:
    stack = three_releases()
    stack.values["k8s-demo:imageRepository"] = "registry.example.com/team/k8s-demo"
    stack.outcomes = [OK]
    asked: list[tuple[str, str]] = []

    def check(repository: str, tag: str) -> str | None:
        asked.append((repository, tag))
        return None

    rollback(stack, "2", check=check)
    assert asked == [("registry.example.com/team/k8s-demo", "0.2")]


# A stack whose releases were promotions: each pinned a digest (imageDigest), which a rollback restores.

PROMOTED = "registry.example.com/team/k8s-demo"
DIGEST_1, DIGEST_2 = "sha256:" + "01" * 32, "sha256:" + "02" * 32


def promoted_releases() -> FakeStack:
    stack = FakeStack([update("10:01", tag="0.1", digest=DIGEST_1), update("10:02", tag="0.2", digest=DIGEST_2)])
    stack.values.update({"k8s-demo:imageRepository": PROMOTED, IMAGE_TAG_KEY: "0.2", "k8s-demo:imageDigest": DIGEST_2})
    return stack


def test_rollback_to_a_promoted_release_pins_its_digest_again() -> None:
    stack = promoted_releases()
    stack.outcomes = [OK]
    assert rollback(stack, "1") == 0
    assert stack.calls == ["set imageTag=0.1", f"set imageDigest={DIGEST_1}", "up"]


def test_rollback_by_tag_unpins_the_digest() -> None:
    stack = promoted_releases()
    stack.outcomes = [OK]
    assert rollback(stack, "0.1") == 0
    assert stack.calls == ["set imageTag=0.1", "set imageDigest=", "up"]


def test_the_image_check_of_a_promoted_release_asks_for_its_digest() -> None:
    stack = promoted_releases()
    stack.outcomes = [OK]
    asked: list[tuple[str, str]] = []

    def check(repository: str, reference: str) -> str | None:
        asked.append((repository, reference))
        return None

    rollback(stack, "1", check=check)
    assert asked == [(PROMOTED, DIGEST_1)]


def test_a_failed_rollout_rolls_back_to_the_last_good_digest() -> None:
    stack = promoted_releases()
    stack.values[IMAGE_TAG_KEY] = "0.3"
    stack.values["k8s-demo:imageDigest"] = "sha256:" + "03" * 32
    stack.outcomes = [ROLLOUT_FAILED, OK]
    assert up(stack) == 1
    assert stack.calls == ["up", "set imageTag=0.2", f"set imageDigest={DIGEST_2}", "up"]


def test_a_rollback_into_invalid_config_is_refused_and_changes_nothing() -> None:
    stack = three_releases()
    stack.values["k8s-demo:replicas"] = "many"
    with pytest.raises(Refusal, match=r"k8s-demo:replicas = 'many': must be an integer >= 0"):
        rollback(stack, "1")
    assert stack.calls == []


def test_main_prints_a_refusal_and_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stack = three_releases()
    monkeypatch.setattr("ops.releases.__main__.PulumiStack.open", lambda *args, **kwargs: stack)
    assert main(["rollback", "--stack", "dev", "--to", "9", "--no-image-check"]) == 2
    assert capsys.readouterr().err == (
        "error: there is no release 9: releases are 1 to 3 (make history)\nNothing was changed.\n"
    )


# up, and the automatic rollback


def test_up_without_a_terminal_or_yes_is_refused_before_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("ops.releases.__main__.PulumiStack.open", lambda *args, **kwargs: opened.append("open"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["up", "--stack", "dev"]) == 2
    assert opened == []
    assert capsys.readouterr().err == (
        "error: no terminal to confirm the update on; pass --yes or --skip-preview (make up ARGS=--yes)\n"
        "Nothing was changed.\n"
    )


def test_skip_preview_without_a_terminal_updates_without_a_question(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    monkeypatch.setattr("ops.releases.__main__.PulumiStack.open", lambda *args, **kwargs: stack)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert (main(["up", "--stack", "dev", "--skip-preview"]), stack.calls) == (0, ["up"])


def test_a_flag_up_cannot_honour_is_refused_by_name_before_anything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("ops.releases.__main__.PulumiStack.open", lambda *args, **kwargs: opened.append("open"))
    assert main(["up", "--stack", "dev", "--yes", "--show-sames"]) == 2
    assert opened == []
    assert capsys.readouterr().err == (
        "error: make up cannot pass --show-sames on: not a pulumi up flag it takes; "
        "`make up ARGS=--help` lists the flags it takes\nNothing was changed.\n"
    )


def test_up_takes_the_message_flag() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    up_command(stack, app_version=APP_VERSION, app_version_at=no_git, confirm=None, message="hot fix")
    assert stack.messages == ["hot fix"]


def test_up_that_succeeds_changes_nothing_else() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    assert up(stack) == 0
    assert stack.calls == ["up"]


def test_up_records_the_change_cause_as_the_message() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    up(stack)
    assert stack.messages == [f"pulumi up: image k8s-demo:{APP_VERSION}, stack dev"]


def test_up_asks_after_the_preview() -> None:
    stack = three_releases()
    stack.outcomes = [OK]
    up(stack, confirm=True)
    assert stack.calls == ["preview", "up"]


def test_up_declined_changes_nothing() -> None:
    stack = three_releases()
    assert up(stack, confirm=False) == 1
    assert stack.calls == ["preview"]


def test_a_failed_rollout_rolls_back_to_the_last_successful_tag() -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.outcomes = [ROLLOUT_FAILED, OK]
    assert up(stack) == 1
    assert stack.calls == ["up", "set imageTag=0.3", "up"]


def test_the_automatic_rollback_records_why_as_the_message() -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.outcomes = [ROLLOUT_FAILED, OK]
    up(stack)
    assert stack.messages[1] == (
        "automatic rollback to release 3 after release 4 (tag 0.4-broken) failed: image k8s-demo:0.3, stack dev"
    )


def test_the_automatic_rollback_message(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.outcomes = [ROLLOUT_FAILED, OK]
    up(stack)
    assert capsys.readouterr().err == (
        "error: release 4 (tag 0.4-broken) failed: "
        'ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-7d9" has timed out progressing.\n'
        "Rolled back to release 3 (tag 0.3), recorded as release 5: the rollout completed and imageTag is now 0.3.\n"
        "To release again: fix the cause, then `pulumi config set imageTag <new tag>` "
        "(or `pulumi config rm imageTag` to deploy app/VERSION) and `make up`.\n"
    )


def test_a_failed_rollback_is_tried_once_and_reported(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.outcomes = [ROLLOUT_FAILED, ROLLOUT_FAILED]
    assert up(stack) == 1
    assert stack.calls == ["up", "set imageTag=0.3", "up"]
    assert "The rollback to release 3 (tag 0.3) failed too (release 5): ProgressDeadlineExceeded" in (
        capsys.readouterr().err
    )


def test_rollback_on_failure_off_keeps_pulumis_behaviour(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.values["k8s-demo:rollbackOnFailure"] = "false"
    stack.outcomes = [ROLLOUT_FAILED]
    assert up(stack) == 1
    assert stack.calls == ["up"]
    assert "rollbackOnFailure is false: nothing was rolled back" in capsys.readouterr().err


def test_a_failure_that_is_not_a_rollout_is_not_rolled_back() -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4"
    stack.outcomes = [OTHER_FAILURE]
    assert up(stack) == 1
    assert stack.calls == ["up"]


def test_a_failed_first_release_is_not_rolled_back(capsys: pytest.CaptureFixture[str]) -> None:
    stack = FakeStack([])
    stack.values[IMAGE_TAG_KEY] = "0.1-broken"
    stack.outcomes = [ROLLOUT_FAILED]
    up(stack)
    assert stack.calls == ["up"]
    assert capsys.readouterr().err.endswith("Not rolled back: no earlier release succeeded.\n")


def test_a_failed_config_change_under_the_same_tag_is_not_rolled_back() -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.3"
    stack.outcomes = [ROLLOUT_FAILED]
    up(stack)
    assert stack.calls == ["up"]


def test_up_with_invalid_config_is_refused_before_any_update() -> None:
    stack = three_releases()
    stack.values["k8s-demo:rollbackOnFailure"] = "maybe"
    with pytest.raises(Refusal, match=r"k8s-demo:rollbackOnFailure = 'maybe': must be true or false"):
        up(stack)
    assert stack.calls == []


# up whose image cannot be pushed


def pushing_stack(outcome: UpOutcome) -> FakeStack:
    stack = three_releases()
    stack.values["k8s-demo:imageRepository"] = "127.0.0.1:5000/k8s-demo"
    stack.outcomes = [outcome]
    return stack


def test_up_whose_push_is_refused_names_the_registry_and_the_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    assert up(pushing_stack(PUSH_REFUSED)) == 1
    assert capsys.readouterr().err == (
        "error: the push of 127.0.0.1:5000/k8s-demo:0.9 to 127.0.0.1:5000 failed: HTTP 405 Method not allowed\n"
        "The registry refused it: it accepts no pushes, as when it is read-only (maintenance, garbage collection).\n"
        "The Deployment was not changed: it still runs the image it ran before. "
        "Run `make up` again once the registry accepts the push.\n"
    )


def test_up_whose_push_is_refused_is_not_rolled_back() -> None:
    stack = pushing_stack(PUSH_REFUSED)
    up(stack)
    assert stack.calls == ["up"]


def test_the_automatic_rollback_updates_the_whole_stack() -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-broken"
    stack.outcomes = [ROLLOUT_FAILED, OK]
    up(stack)
    assert stack.whole_stacks == [False, True]


def test_up_whose_build_fails_adds_nothing_to_the_engines_account(capsys: pytest.CaptureFixture[str]) -> None:
    up(pushing_stack(BUILD_FAILED))
    assert capsys.readouterr().err == ""


# What PulumiStack.up makes of the engine's events and the stack's state


DEPLOYMENT_URN = "urn:pulumi:dev::k8s-demo::k8s-demo:index:WebApp$kubernetes:apps/v1:Deployment::web-deployment"
IMAGE_URN = "urn:pulumi:dev::k8s-demo::k8s-demo:index:AppImage$docker:index/image:Image::app-image-build"
PUSH_ERROR = PUSH_REFUSED.image_errors[0]
#: An up whose refresh reads the Deployment (with a progress line), then whose image push fails.
REFRESH_THEN_PUSH_FAILS = [
    step_event(auto.OpType.REFRESH, DEPLOYMENT_TYPE, DEPLOYMENT_URN),
    diagnostic_event(DEPLOYMENT_URN, "Deployment initialization complete", ephemeral=True),
    step_event(auto.OpType.UPDATE, IMAGE_TYPE, IMAGE_URN),
    diagnostic_event(IMAGE_URN, PUSH_ERROR, severity="error"),
    step_failed_event(auto.OpType.UPDATE, IMAGE_TYPE, IMAGE_URN),
]
#: The Deployment's update times out; the provider's error names no reason of Kubernetes'.
ROLLOUT_TIMES_OUT = [
    step_event(auto.OpType.UPDATE, DEPLOYMENT_TYPE, DEPLOYMENT_URN),
    diagnostic_event(DEPLOYMENT_URN, "Waiting for the rollout", ephemeral=True),
    diagnostic_event(DEPLOYMENT_URN, "1 error occurred:\n* timed out waiting for the condition", severity="error"),
    step_failed_event(auto.OpType.UPDATE, DEPLOYMENT_TYPE, DEPLOYMENT_URN),
]


def pulumi_up(events: list[auto.EngineEvent], resources: list[dict[str, object]] | None = None) -> UpOutcome:
    return PulumiStack(cast(auto.Stack, EventStack(events, resources or [])), watch=False).up("message")


def test_what_the_refresh_reports_on_the_deployment_is_no_failed_rollout() -> None:
    assert pulumi_up(REFRESH_THEN_PUSH_FAILS).rollout is None


def test_the_image_steps_errors_are_kept() -> None:
    assert list(pulumi_up(REFRESH_THEN_PUSH_FAILS).image_errors) == [PUSH_ERROR]


def test_the_verdict_of_a_failed_rollout_is_the_deployments_recorded_status() -> None:
    status = {
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": PROGRESS_DEADLINE, "message": DEADLINE.message}
        ]
    }
    deployment: dict[str, object] = {"urn": DEPLOYMENT_URN, "type": DEPLOYMENT_TYPE, "outputs": {"status": status}}
    assert pulumi_up(ROLLOUT_TIMES_OUT, [deployment]).rollout == RolloutFailure(
        PROGRESS_DEADLINE, DEADLINE.message, "1 error occurred:\n* timed out waiting for the condition"
    )


def test_without_a_recorded_status_the_verdict_is_the_engines_error() -> None:
    outcome = pulumi_up(ROLLOUT_TIMES_OUT)
    assert outcome.rollout is not None
    assert str(outcome.rollout) == "1 error occurred:"


# make up's flags reach the engine with Pulumi's meaning


def test_the_update_takes_make_ups_flags() -> None:
    engine_stack = EventStack([])
    flags = update_flags.parse(["--target", "urn:a", "--parallel", "3", "--diff"])
    PulumiStack(cast(auto.Stack, engine_stack), flags=flags, watch=False).up("message")
    options = engine_stack.options
    assert (options["target"], options["parallel"], options["diff"], options["message"]) == (
        ["urn:a"],
        3,
        True,
        "message",
    )


def test_a_whole_stack_update_drops_the_narrowing_flags() -> None:
    engine_stack = EventStack([])
    flags = update_flags.parse(["--target", "urn:a", "--replace", "urn:b", "--parallel", "3"])
    PulumiStack(cast(auto.Stack, engine_stack), flags=flags, watch=False).up("message", whole_stack=True)
    options = engine_stack.options
    assert (options["target"], options["replace"], options["parallel"]) == (None, None, 3)


# The diagnosis of a failed rollout: printed ahead of the rollback, recorded for history, in the JSON.

CRASH = Cause(
    name="CrashLoopBackOff",
    pods=2,
    sample="k8s-demo-deployment-5c9-abcde",
    message="back-off 10s restarting failed container=web",
    terminal=True,
    container="web",
    exit_code=1,
    reason="Error",
    log=('[emerg] 1#1: unknown directive "no_such_directive"',),
)
CRASHED = Diagnosis(replica_set="k8s-demo-deployment-5c9", causes=(CRASH,))
STOPPED = UpOutcome(
    False,
    rollout=RolloutFailure(error=f"stopped waiting, the rollout cannot succeed: {CRASH.headline()}"),
    diagnosis=CRASHED,
    stopped=True,
)


def crashed_up(capsys: pytest.CaptureFixture[str], *outcomes: UpOutcome) -> tuple[FakeStack, str, str]:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-crash"
    stack.outcomes = list(outcomes)
    up(stack)
    captured = capsys.readouterr()
    return stack, captured.out, captured.err


def test_the_diagnosis_is_printed_ahead_of_the_rollback(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = crashed_up(capsys, STOPPED, OK)
    assert out.splitlines()[:6] == [
        "",
        "Why release 4 (tag 0.4-crash) failed, from its new pods (ReplicaSet k8s-demo-deployment-5c9):",
        "  - CrashLoopBackOff (2 pods, exit code 1 (Error)): last log line: "
        '[emerg] 1#1: unknown directive "no_such_directive" [terminal]',
        "    sample pod: k8s-demo-deployment-5c9-abcde, container web",
        "    its last 1 log lines (as the container wrote them):",
        '    | [emerg] 1#1: unknown directive "no_such_directive"',
    ]
    assert out.index("Why release 4") < out.index("rolling back to release 3")


def test_a_stopped_release_says_why_in_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = crashed_up(capsys, STOPPED, OK)
    assert err.splitlines()[0] == (
        "error: release 4 (tag 0.4-crash) failed: stopped waiting, the rollout cannot succeed: "
        "CrashLoopBackOff (2 pods, exit code 1 (Error)): last log line: "
        '[emerg] 1#1: unknown directive "no_such_directive"'
    )


def test_a_waited_for_failure_names_its_cause_beside_kubernetes_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    waited = UpOutcome(False, rollout=DEADLINE, diagnosis=CRASHED)
    _, _, err = crashed_up(capsys, waited, OK)
    assert err.splitlines()[:2] == [
        "error: release 4 (tag 0.4-crash) failed: "
        'ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-7d9" has timed out progressing.',
        f"  cause: {CRASH.headline()}",
    ]


def test_the_rollbacks_message_records_the_cause_for_history(capsys: pytest.CaptureFixture[str]) -> None:
    stack, _, _ = crashed_up(capsys, STOPPED, OK)
    assert stack.messages[1].splitlines() == [
        "automatic rollback to release 3 after release 4 (tag 0.4-crash) failed: image k8s-demo:0.3, stack dev",
        f"release 4 failed: {CRASH.headline()}",
    ]


def test_a_rollout_without_a_cause_found_records_none(capsys: pytest.CaptureFixture[str]) -> None:
    stack, _, _ = crashed_up(capsys, ROLLOUT_FAILED, OK)
    assert len(stack.messages[1].splitlines()) == 1


def test_the_json_result_holds_the_diagnosis_and_the_rollback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-crash"
    stack.outcomes = [STOPPED, OK]
    out = tmp_path / "up.json"
    assert up_command(stack, app_version=APP_VERSION, app_version_at=no_git, confirm=None, out=out) == 1
    result = json.loads(out.read_text(encoding="utf-8"))
    assert (result["result"], result["exitCode"], result["failedRelease"], result["update"]["stopped"]) == (
        "failed",
        1,
        "release 4 (tag 0.4-crash)",
        True,
    )
    assert result["update"]["diagnosis"]["causes"][0]["log"] == list(CRASH.log)
    assert (result["rollback"]["toRelease"], result["rollback"]["tag"], result["rollback"]["succeeded"]) == (
        3,
        "0.3",
        True,
    )


def test_json_on_stdout_is_the_only_thing_there(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values[IMAGE_TAG_KEY] = "0.4-crash"
    stack.outcomes = [STOPPED, OK]
    up_command(stack, app_version=APP_VERSION, app_version_at=no_git, confirm=None, as_json=True)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["update"]["diagnosis"]["causes"][0]["cause"] == "CrashLoopBackOff"
    assert "Why release 4 (tag 0.4-crash) failed" in captured.err


def test_a_stopped_update_takes_the_diagnosis_as_its_verdict() -> None:
    outcome = PulumiStack(cast(auto.Stack, EventStack([])), watch=False).outcome(
        engine.report_from_events(ROLLOUT_TIMES_OUT), CRASHED, stopped=True
    )
    assert (str(outcome.rollout), outcome.stopped, outcome.diagnosis) == (
        f"stopped waiting, the rollout cannot succeed: {CRASH.headline()}",
        True,
        CRASHED,
    )


def test_a_failed_rollback_prints_its_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.outcomes = [UpOutcome(False, rollout=DEADLINE, diagnosis=CRASHED)]
    rollback_command(stack, "1", app_version=APP_VERSION, app_version_at=no_git, check=None)
    assert "Why release 4 (tag 0.1) failed, from its new pods" in capsys.readouterr().err


def test_a_refused_read_is_named_and_kubernetes_verdict_stands(capsys: pytest.CaptureFixture[str]) -> None:
    refused = UpOutcome(False, rollout=DEADLINE, diagnosis=Diagnosis(refused=("list replicasets",)))
    _, out, err = crashed_up(capsys, refused, OK)
    assert "the cluster refused `list replicasets`; the namespace Role needs it" in out
    assert err.splitlines()[0] == (
        "error: release 4 (tag 0.4-crash) failed: "
        'ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-7d9" has timed out progressing.'
    )


WAITING = Cause(
    name="ReadinessProbeFailed",
    pods=3,
    sample="k8s-demo-deployment-5c9-abcde",
    message="Readiness probe failed: HTTP probe failed with statuscode: 500",
    terminal=False,
)
GAVE_UP = Diagnosis(replica_set="k8s-demo-deployment-5c9", causes=(WAITING,), deadline=DEADLINE.message)


def test_an_update_stopped_at_the_progress_deadline_takes_kubernetes_verdict() -> None:
    outcome = PulumiStack(cast(auto.Stack, EventStack([])), watch=False).outcome(
        engine.report_from_events(ROLLOUT_TIMES_OUT), GAVE_UP, stopped=True
    )
    assert (outcome.rollout, outcome.stopped) == (DEADLINE, True)


def test_the_stop_at_the_deadline_says_kubernetes_gave_up_and_on_what_the_pods_wait() -> None:
    assert stop_reason(GAVE_UP).splitlines() == [
        'Kubernetes gave up on the rollout: ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-7d9" has '
        "timed out progressing.",
        "Its new pods are waiting on: ReadinessProbeFailed (3 pods): Readiness probe failed: HTTP probe failed with "
        "statuscode: 500",
    ]


def test_a_terminal_cause_is_the_stop_reason_even_past_the_deadline() -> None:
    both = Diagnosis(causes=(CRASH,), deadline=DEADLINE.message)
    assert (stop_reason(both), str(stopped_verdict(both))) == (
        f"The rollout cannot succeed: {CRASH.headline()}",
        f"stopped waiting, the rollout cannot succeed: {CRASH.headline()}",
    )


def test_a_release_stopped_at_the_deadline_names_its_cause_under_the_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stopped = UpOutcome(False, rollout=DEADLINE, diagnosis=GAVE_UP, stopped=True)
    _, _, err = crashed_up(capsys, stopped, OK)
    assert err.splitlines()[:2] == [
        "error: release 4 (tag 0.4-crash) failed: "
        'ProgressDeadlineExceeded: ReplicaSet "k8s-demo-deployment-7d9" has timed out progressing.',
        f"  cause: {WAITING.headline()}",
    ]


# The stack's config: read once per command; the watcher's namespace as the settings resolve it.


class ConfigStack:
    """An Automation API stack's config: counts the reads (each decrypts the stack's secrets)."""

    name = "dev"

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.reads = 0

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        self.reads += 1
        return {key: auto.ConfigValue(value) for key, value in self.values.items()}

    def set_config(self, key: str, value: auto.ConfigValue) -> None:
        self.values[key] = value.value


def test_the_config_is_read_once_until_the_command_changes_it() -> None:
    stack = ConfigStack(example_config("dev"))
    deployer = PulumiStack(cast(auto.Stack, stack), watch=False)
    deployer.config()
    deployer.config()
    deployer.set_image_tag("0.7")
    assert (deployer.config()[IMAGE_TAG_KEY], stack.reads) == ("0.7", 2)


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [("", "k8s-demo-dev"), ("team-a", "team-a")],
)
def test_the_watcher_reads_the_namespace_the_settings_resolve(
    namespace: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = ConfigStack({**example_config("dev"), config_key("namespace"): namespace})
    targets: list[ClusterTarget] = []
    monkeypatch.setattr(Cluster, "connect", staticmethod(targets.append))
    watcher, _ = PulumiStack(cast(auto.Stack, stack)).watcher(fail_fast=True)
    watcher._connect()
    assert targets == [ClusterTarget(namespace=expected)]


# Causes kept as stack tags: make history has one line of cause per failed release, whatever followed it.


def test_without_rollback_the_failed_releases_cause_is_kept_as_a_tag(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values["k8s-demo:rollbackOnFailure"] = "false"
    stack.outcomes = [UpOutcome(False, rollout=DEADLINE, diagnosis=GAVE_UP)]
    up(stack)
    assert stack.causes == {4: WAITING.headline()}


def test_history_shows_a_tagged_cause_under_its_failed_release(capsys: pytest.CaptureFixture[str]) -> None:
    stack = FakeStack([update("10:01", tag="0.1"), update("10:02", tag="0.2", result="failed")])
    stack.causes = {2: "ErrImageNeverPull (3 pods): Container image is not present with pull policy of Never"}
    history_command(stack, no_git, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert [(r["release"], r["cause"]) for r in printed] == [
        (2, "ErrImageNeverPull (3 pods): Container image is not present with pull policy of Never"),
        (1, ""),
    ]


def test_a_failed_rollback_keeps_its_cause(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.outcomes = [UpOutcome(False, rollout=DEADLINE, diagnosis=CRASHED)]
    rollback(stack, "1")
    assert stack.causes == {4: CRASH.headline()}


def test_a_failure_without_a_cause_found_keeps_no_tag(capsys: pytest.CaptureFixture[str]) -> None:
    stack = three_releases()
    stack.values["k8s-demo:rollbackOnFailure"] = "false"
    stack.outcomes = [ROLLOUT_FAILED]
    up(stack)
    assert stack.causes == {}

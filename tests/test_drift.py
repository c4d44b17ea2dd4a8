"""``make drift``'s verdict: exit 0 none, 1 drift (with the PR comment's drift section), 2 the check failed.

Judged over the engine events of real previews recorded against the sandbox
(tests/data/pr_comment/, see tests/test_preview_comment.py): a clean stack, one
after `kubectl rollout undo`, and one whose config the program refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.drift import DRIFT, ERROR, NO_DRIFT, DriftReport, as_json, exit_code, judge
from ops.preview.__main__ import recorded_preview
from ops.preview.comment import drift_section

DATA = Path(__file__).parent / "data" / "pr_comment"


def recorded(case: str, stack: str = "dev") -> DriftReport:
    return judge(stack, recorded_preview(DATA / f"{case}.events.jsonl"))


@pytest.mark.parametrize(
    ("failed", "drifted", "code"),
    [(False, 0, NO_DRIFT), (False, 2, DRIFT), (True, 0, ERROR), (True, 3, ERROR)],
)
def test_exit_codes(failed: bool, drifted: int, code: int) -> None:
    assert exit_code(failed=failed, drifted=drifted) == code


def test_a_clean_stack_exits_0() -> None:
    report = recorded("release")
    assert (report.exit_code, report.text()) == (0, "dev: no drift: the cluster matches the last update.")


def test_a_stack_after_kubectl_rollout_undo_exits_1_naming_each_field() -> None:
    report = recorded("drift")
    assert report.exit_code == 1
    assert report.text().splitlines()[0] == (
        "dev: drift in 1 resource(s): the next `make up STACK=dev` puts back what config says; "
        "to keep a change, write it into config first."
    )
    assert (
        "- Deployment k8s-demo-deployment: `spec.template.spec.containers[0].image` is `k8s-demo:0.1` in the cluster "
        "(last update: `k8s-demo:0.2`), config asks for `k8s-demo:0.2`"
    ) in report.text().splitlines()


def test_drift_prints_the_pr_comments_drift_section_as_it_is() -> None:
    preview = recorded_preview(DATA / "drift.events.jsonl")
    assert recorded("drift").text().splitlines()[2:] == drift_section(preview)


def test_a_failed_check_exits_2_with_its_errors() -> None:
    report = recorded("failed-config", stack="staging")
    assert report.exit_code == 2
    lines = report.text().splitlines()
    assert lines[0] == "staging: the drift check failed, so drift is unknown:"
    assert any("invalid configuration for stack 'staging'" in line for line in lines)


def test_an_error_wins_over_drift() -> None:
    report = DriftReport(stack="dev", drifted=1, section=["### Drift", "", "- x"], errors=["cluster unreachable"])
    assert report.exit_code == 2
    assert report.text().splitlines()[-3:] == ["### Drift", "", "- x"]


def test_the_json_verdict_keeps_the_exit_code_make_cannot() -> None:
    verdict = json.loads(json.dumps(as_json(recorded("drift"))))
    assert (verdict["stack"], verdict["exitCode"], verdict["drifted"]) == ("dev", 1, 1)
    assert verdict["markdown"] == recorded("drift").text()

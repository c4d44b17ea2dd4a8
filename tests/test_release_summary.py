"""make up's JSON result as the deploy workflows' job summary (ops/releases/summary.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops.releases.summary import main, markdown

FAILED: dict[str, Any] = {
    "stack": "dev",
    "imageTag": "0.4-crash",
    "result": "failed",
    "exitCode": 1,
    "failedRelease": "release 4 (tag 0.4-crash)",
    "update": {
        "succeeded": False,
        "stopped": True,
        "verdict": "stopped waiting, the rollout cannot succeed: CrashLoopBackOff (2 pods, ...)",
        "changes": {},
        "diagnosis": {
            "replicaSet": "k8s-demo-deployment-5c9",
            "terminal": True,
            "causes": [
                {
                    "cause": "CrashLoopBackOff",
                    "pods": 2,
                    "samplePod": "k8s-demo-deployment-5c9-abcde",
                    "message": "back-off 10s | restarting failed container=web",
                    "terminal": True,
                    "container": "web",
                    "exitCode": 1,
                    "reason": "Error",
                    "log": ['[emerg] unknown directive "no_such_directive"'],
                }
            ],
            "refused": ["get pods/log"],
        },
    },
    "rollback": {"toRelease": 3, "tag": "0.3", "release": 5, "succeeded": True, "stopped": False, "verdict": ""},
    "notRolledBack": "",
    "error": "error: release 4 (tag 0.4-crash) failed: ...",
}


def test_the_summary_names_the_failed_release_and_why_it_stopped() -> None:
    lines = markdown(FAILED).splitlines()
    assert lines[0] == "### make up, stack dev, tag 0.4-crash: failed"
    assert lines[2] == (
        "**release 4 (tag 0.4-crash) failed** (stopped early: waiting could not fix it): "
        "stopped waiting, the rollout cannot succeed: CrashLoopBackOff (2 pods, ...)"
    )


def test_each_cause_is_a_row_with_its_pipes_escaped() -> None:
    assert (
        "| CrashLoopBackOff (exit code 1, Error) | 2 | k8s-demo-deployment-5c9-abcde | yes | "
        "back-off 10s \\| restarting failed container=web |"
    ) in markdown(FAILED).splitlines()


def test_a_crashs_log_lines_are_in_a_collapsed_block() -> None:
    text = markdown(FAILED)
    assert (
        "<details><summary>Last 1 log lines of k8s-demo-deployment-5c9-abcde</summary>\n\n```text\n"
        '[emerg] unknown directive "no_such_directive"\n```\n</details>'
    ) in text


def test_a_refused_read_is_named() -> None:
    assert "- not read: the cluster refused `get pods/log`" in markdown(FAILED).splitlines()


def test_the_rollback_is_named() -> None:
    assert "Rolled back to release 3 (tag 0.3), recorded as release 5: completed." in markdown(FAILED).splitlines()


def test_a_success_is_one_line() -> None:
    assert markdown({"stack": "dev", "imageTag": "0.2", "result": "succeeded"}) == (
        "### make up, stack dev, tag 0.2: succeeded\n"
    )


def test_the_command_prints_the_summary_of_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = tmp_path / "up.json"
    result.write_text(json.dumps(FAILED), encoding="utf-8")
    assert main([str(result)]) == 0
    assert capsys.readouterr().out == markdown(FAILED)


def test_an_unreadable_result_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read make up's result {tmp_path / 'missing.json'}: ")

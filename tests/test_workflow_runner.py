"""What the local runner of `make workflows` decides before act runs (tests/e2e/workflow_runner.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.e2e import workflow_runner
from tests.e2e.sandbox import REPO
from tests.e2e.workflow_runner import EVENTS_DIR, event_name, node_problem, pinned_actions, python_versions, triggered

USES = re.compile(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})")


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS_DIR / name).read_text(encoding="utf-8")))


def test_a_push_to_main_runs_test_and_deploy() -> None:
    assert triggered("push", event("push-main.json")) == ["deploy.yml", "test.yml"]


def test_a_push_to_another_branch_runs_nothing() -> None:
    assert triggered("push", {**event("push-main.json"), "ref": "refs/heads/feature"}) == []


def test_an_opened_pull_request_runs_preview_review_stack_and_test() -> None:
    assert triggered("pull_request", event("pull_request-opened.json")) == [
        "preview.yml",
        "review-stack.yml",
        "test.yml",
    ]


def test_a_closed_pull_request_runs_only_review_stack() -> None:
    assert triggered("pull_request", event("pull_request-closed.json")) == ["review-stack.yml"]


def test_a_pull_request_into_another_branch_gets_no_preview() -> None:
    body = event("pull_request-opened.json")
    body["pull_request"]["base"]["ref"] = "release"
    assert triggered("pull_request", body) == ["review-stack.yml", "test.yml"]


def test_the_pinned_actions_are_every_third_party_use_but_checkout() -> None:
    used = {
        (repo, sha)
        for path in [*REPO.glob(".github/workflows/*.yml"), *REPO.glob(".github/actions/*/action.yml")]
        for repo, sha in USES.findall(path.read_text(encoding="utf-8"))
        if repo != "actions/checkout"
    }
    assert pinned_actions() == sorted(used)
    assert {repo for repo, _ in used} == {"actions/setup-python", "pulumi/actions"}


def test_no_node_is_named() -> None:
    assert node_problem(None) == (
        "node is not on PATH: act runs the JavaScript actions with the host's node (apt-get install nodejs)"
    )


def test_an_old_node_is_refused_naming_the_oldest_allowed() -> None:
    assert node_problem("v18.19.0\n") == (
        "node v18.19.0 is too old for the actions' bundles: Node.js 20 or newer is needed"
    )


def test_node_20_runs_the_actions() -> None:
    assert node_problem("v20.20.2\n") is None


def test_the_event_is_the_payload_name_up_to_its_first_dash() -> None:
    names = {p.name: event_name(p) for p in EVENTS_DIR.glob("*.json")}
    assert set(names.values()) == {"push", "pull_request", "workflow_dispatch", "schedule"}
    assert names["workflow_dispatch-promote.json"] == "workflow_dispatch"


def test_a_dispatch_runs_only_the_workflow_it_names() -> None:
    assert triggered("workflow_dispatch", event("workflow_dispatch-promote.json")) == ["promote.yml"]
    assert triggered("workflow_dispatch", event("workflow_dispatch-drift.json")) == ["drift.yml"]


def test_a_schedule_runs_the_workflows_of_its_cron() -> None:
    assert triggered("schedule", event("schedule-drift.json")) == ["drift.yml"]
    assert triggered("schedule", {**event("schedule-drift.json"), "schedule": "0 0 * * *"}) == []


def test_the_event_payloads_are_of_one_repository() -> None:
    names = {event(p.name)["repository"]["full_name"] for p in EVENTS_DIR.glob("*.json")}
    assert names == {"example/k8s-demo"}


def test_only_the_fork_payload_comes_from_another_repository() -> None:
    heads = {
        p.name: body["pull_request"]["head"]["repo"]["full_name"]
        for p in EVENTS_DIR.glob("pull_request-*.json")
        for body in [event(p.name)]
    }
    assert {name for name, repo in heads.items() if repo != "example/k8s-demo"} == {"pull_request-fork.json"}


def test_act_log_lines_become_jobs_with_results_and_annotations() -> None:
    lines = [
        {"job": "preview/fork-notice  ", "msg": "⭐ Run Main Preview skipped", "time": "2026-11-30T11:42:20Z"},
        {"job": "preview/fork-notice  ", "raw": "::notice::x\n", "command": "notice", "arg": "x"},
        {"job": "preview/fork-notice  ", "msg": "🏁 done", "jobResult": "success", "time": "2026-11-30T11:42:23Z"},
        {"level": "warning", "msg": "not a job's line"},
    ]
    jobs = workflow_runner._jobs("\n".join([*map(json.dumps, lines), "Error: plain text"]))
    assert {name: (j.result, j.annotations, j.seconds) for name, j in jobs.items()} == {
        "preview/fork-notice": ("success", (("notice", "x"),), 3)
    }


def test_the_workflows_ask_for_python_3_11_only() -> None:
    assert python_versions() == {"3.11"}

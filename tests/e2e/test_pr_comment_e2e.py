"""The pull-request comment of a real preview: ``make pr-preview`` in the project directory.

Deploys 0.1 with dev's rollout shape (10 replicas, maxSurge 1, maxUnavailable 1,
minReadySeconds 3), changes the tag to 0.2 and runs the command the preview job
runs (``make pr-preview``), which calls ``pulumi preview --refresh --json`` with the
policy pack, through the Python language host as everywhere in the suite.
"""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from tests.e2e.operator import make
from tests.e2e.sandbox import MIN_READY_SECONDS, REPLICAS, Project

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox("kwok's simulated pods: it deploys k8s-demo:0.1 by tag, which nothing here builds"),
]

#: Its own stack (and so its own namespace), so the suite's dev stack is left alone.
STACK = "e2e-comment"


@pytest.fixture(scope="module")
def comment(e2e_project: Project) -> str:
    """Deploy 0.1, set 0.2, and render the comment of the preview as the preview job does (`make pr-preview`)."""
    stack = e2e_project.stack(STACK)
    stack.set_config("replicas", auto.ConfigValue(str(REPLICAS)))
    stack.set_config("imageTag", auto.ConfigValue("0.1"))
    stack.up(on_output=lambda _: None)
    stack.set_config("imageTag", auto.ConfigValue("0.2"))

    out = e2e_project.dir / "build" / "pr-comment" / f"{STACK}.md"
    done = make(e2e_project, "pr-preview", f"STACK={STACK}", f"OUT={out}")
    assert done.returncode == 0, f"make pr-preview failed:\n{done.stderr}\n{out.read_text() if out.exists() else ''}"
    return out.read_text(encoding="utf-8")


def test_comment_names_the_release(comment: str) -> None:
    assert "- `k8s-demo:0.1` -> `k8s-demo:0.2`" in comment.splitlines()


def test_comment_plans_five_batches(comment: str) -> None:
    assert "| batches | 5 |" in comment.splitlines()


def test_comment_gives_the_least_time(comment: str) -> None:
    assert f"| least time | 15 s (5 x minReadySeconds {MIN_READY_SECONDS} s) |" in comment.splitlines()


def test_comment_keeps_nine_pods_serving(comment: str) -> None:
    assert "| least pods serving | 9 of 10 |" in comment.splitlines()

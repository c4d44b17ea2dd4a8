"""The pull-request comment of a real preview: ``python -m ops.pr_comment`` with the CLI in the project directory.

Deploys 0.1 with dev's rollout shape (10 replicas, maxSurge 1, maxUnavailable 1,
minReadySeconds 3), changes the tag to 0.2 and runs the command the preview job
runs (``make pr-preview``), which calls ``pulumi preview --refresh --json`` with the
policy pack. Unlike the rest of the suite this needs the Python language host
(``pulumi-language-python``) on PATH: the CLI runs the program from the project
directory, as on a developer's machine or a CI runner. Without it the test is
skipped, with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.e2e.sandbox import MIN_READY_SECONDS, REPLICAS, Cluster, Project, tools_dir

pytestmark = pytest.mark.e2e

#: Its own stack (and so its own namespace), so the suite's dev stack is left alone.
STACK = "e2e-comment"
LANGUAGE_HOST = "pulumi-language-python"


def _cli_path() -> str:
    """PATH with the sandbox's Pulumi CLI first, then whatever PATH already had (the language host)."""
    return os.pathsep.join([str(tools_dir() / "bin"), os.environ.get("PATH", "")])


@pytest.fixture(scope="module")
def comment(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """Deploy 0.1, set 0.2, and render the comment of the preview with the real CLI."""
    if shutil.which(LANGUAGE_HOST, path=_cli_path()) is None:
        pytest.skip(f"{LANGUAGE_HOST} is not on PATH: the CLI cannot run the program from the project directory")
    # Asked for only now, so a skip starts no cluster.
    cluster: Cluster = request.getfixturevalue("e2e_cluster")
    project = Project(tmp_path_factory.mktemp("pr-comment"), cluster)
    # Pulumi.yaml's runtime finds the program's virtualenv at .venv; the copy leaves it out.
    (project.dir / ".venv").symlink_to(Path(sys.prefix))
    stack = project.stack(STACK)
    stack.set_config("replicas", auto.ConfigValue(str(REPLICAS)))
    stack.set_config("imageTag", auto.ConfigValue("0.1"))
    stack.up(on_output=lambda _: None)
    stack.set_config("imageTag", auto.ConfigValue("0.2"))

    out = project.dir / "build" / "pr-comment" / f"{STACK}.md"
    # The language host is found on PATH: ambient plugins must be allowed for it.
    env = {k: v for k, v in project.env.items() if k != "PULUMI_IGNORE_AMBIENT_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-m", "ops.pr_comment", "--stack", STACK, "--out", str(out), "--policy-pack", "policy"],
        cwd=project.dir,
        env={**os.environ, **env, "PATH": _cli_path()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"ops.pr_comment failed:\n{result.stderr}\n{out.read_text() if out.exists() else ''}"
    return out.read_text(encoding="utf-8")


def test_comment_names_the_release(comment: str) -> None:
    assert "- `k8s-demo:0.1` -> `k8s-demo:0.2`" in comment.splitlines()


def test_comment_plans_five_batches(comment: str) -> None:
    assert "| batches | 5 |" in comment.splitlines()


def test_comment_gives_the_least_time(comment: str) -> None:
    assert f"| least time | 15 s (5 x minReadySeconds {MIN_READY_SECONDS} s) |" in comment.splitlines()


def test_comment_keeps_nine_pods_serving(comment: str) -> None:
    assert "| least pods serving | 9 of 10 |" in comment.splitlines()

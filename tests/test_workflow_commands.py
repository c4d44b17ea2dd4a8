"""The workflows call the operator commands with arguments those commands accept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ops.releases.__main__ import parser
from tools.workflow_shell import run_blocks

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / ".github" / "workflows").glob("*.yml"))
# `make up ... ARGS=<one word>` or `ARGS="<words>"`: what the Makefile hands to `ops.releases up`.
_MAKE_UP_ARGS = re.compile(r"\bmake up\b[^\n]*?\bARGS=(\"[^\"]*\"|'[^']*'|\S+)")


def make_up_args() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in WORKFLOWS:
        for block in run_blocks(path):
            found.extend((path.name, match.group(1)) for match in _MAKE_UP_ARGS.finditer(block.script))
    return found


def test_the_workflows_run_make_up() -> None:
    # Guards the test below: it has something to check.
    assert [name for name, _ in make_up_args()] == ["deploy.yml", "review-stack.yml"]


@pytest.mark.parametrize(("workflow", "args"), make_up_args())
def test_make_up_args_in_workflows_are_accepted_by_ops_releases(workflow: str, args: str) -> None:
    parsed = parser().parse_args(["up", "--stack", "ci", *shlex.split(args)])
    assert parsed.yes, f"{workflow}: make up runs without a terminal, so it needs --yes"

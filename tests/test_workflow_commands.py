"""The workflows call the operator commands with arguments those commands accept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ops.releases.__main__ import parser
from tools.workflow_shell import run_blocks

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
# `make up ... ARGS=<one word>` or `ARGS="<words>"`: what the Makefile hands to `ops.releases up`.
_MAKE_UP_ARGS = re.compile(r"\bmake up\b[^\n]*?\bARGS=(\"[^\"]*\"|'[^']*'|\S+)")
# A make command in a script: `make` as a word at the start of a command, up to the end of that command.
_MAKE_COMMAND = re.compile(r"(?:^|[;&|({]\s*|\bthen\s+|\bdo\s+)(make\s[^;&|)\n]*)", re.MULTILINE)
# The Makefile's targets (`name: …`) and the variables its recipes read (`$(NAME)`).
_TARGET = re.compile(r"^([a-z0-9-]+):", re.MULTILINE)
_VARIABLE = re.compile(r"\$\(([A-Z_]+)\)")
# make's own options that the workflows use, which take no argument.
_MAKE_FLAGS = {"-s", "--silent", "--no-print-directory"}


def make_up_args() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in WORKFLOWS:
        for block in run_blocks(path):
            found.extend((path.name, match.group(1)) for match in _MAKE_UP_ARGS.finditer(block.script))
    return found


def make_commands() -> list[tuple[str, list[str]]]:
    """Every ``make …`` command in the run blocks of the workflows and actions, split as the shell splits it."""
    found: list[tuple[str, list[str]]] = []
    for path in [*WORKFLOWS, *ACTIONS]:
        for block in run_blocks(path):
            for match in _MAKE_COMMAND.finditer(block.script):
                found.append((path.name if path in WORKFLOWS else path.parent.name, shlex.split(match.group(1))))
    return found


def test_the_workflows_run_make_up() -> None:
    # Guards the test below: it has something to check.
    assert [name for name, _ in make_up_args()] == ["deploy.yml", "review-stack.yml"]


@pytest.mark.parametrize(("workflow", "args"), make_up_args())
def test_make_up_args_in_workflows_are_accepted_by_ops_releases(workflow: str, args: str) -> None:
    parsed = parser().parse_args(["up", "--stack", "ci", *shlex.split(args)])
    assert parsed.yes, f"{workflow}: make up runs without a terminal, so it needs --yes"


def test_every_make_command_of_the_workflows_is_found() -> None:
    # Guards the test below: each workflow that runs the program calls make, and none is missed.
    targets = sorted({(name, next(w for w in words[1:] if not w.startswith("-"))) for name, words in make_commands()})
    assert targets == [
        ("deploy.yml", "test"),
        ("deploy.yml", "up"),
        ("drift.yml", "drift"),
        ("preview.yml", "pr-preview"),
        ("promote.yml", "history"),
        ("promote.yml", "promote"),
        ("review-stack.yml", "pr-preview"),
        ("review-stack.yml", "up"),
        ("setup", "venv"),
        ("test.yml", "test"),
    ]


@pytest.mark.parametrize(("source", "words"), make_commands())
def test_make_commands_name_a_target_and_variables_the_makefile_reads(source: str, words: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(_TARGET.findall(makefile))
    variables = set(_VARIABLE.findall(makefile))
    for word in words[1:]:
        if word in _MAKE_FLAGS:
            continue
        name, assigns, _ = word.partition("=")
        if assigns:
            assert name in variables, f"{source}: make {' '.join(words[1:])}: the Makefile never reads {name}"
        else:
            assert name in targets, f"{source}: make {' '.join(words[1:])}: the Makefile has no target {name}"


def promote_commands() -> list[tuple[str, list[str]]]:
    return [(name, words) for name, words in make_commands() if "promote" in words]


def test_the_promotion_workflow_plans_then_promotes() -> None:
    # Guards the test below: it has something to check.
    assert [("PREVIEW=1" in words, "ARGS=--yes" in words) for _, words in promote_commands()] == [
        (True, False),
        (False, True),
    ]


@pytest.mark.parametrize(("workflow", "words"), promote_commands())
def test_make_promote_in_workflows_is_accepted_by_ops_releases(workflow: str, words: list[str]) -> None:
    # What the Makefile's promote recipe hands to `ops.releases promote`, the variables standing for their values.
    given = dict(word.split("=", 1) for word in words if "=" in word)
    argv = ["promote", "--from", given["FROM"], "--to", given["TO"], "--release", given["REL"]]
    argv += ["--preview"] if given.get("PREVIEW") else []
    argv += ["--out", given["OUT"]] if "OUT" in given else []
    parsed = parser().parse_args([*argv, *shlex.split(given.get("ARGS", ""))])
    assert parsed.preview or parsed.yes, f"{workflow}: make promote runs without a terminal, so it needs --yes"

"""Test doubles for ``ops.release``: recorded CLI history through the Automation API, and a fake stack."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pulumi import automation as auto

from ops.release import UpOutcome
from ops.releases import IMAGE_TAG_KEY
from tools.mock_engine import stack_config

#: ``pulumi stack history --json`` output captured from the sandbox (see tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"


class RecordedCli(auto.PulumiCommand):
    """A Pulumi CLI that answers ``stack history`` with recorded output and every other command with nothing.

    The Automation API parses the answer itself (``Stack.history``), so the
    tests see exactly the ``UpdateSummary`` objects a real run gives.
    """

    def __init__(self, history_json: str) -> None:
        # No real CLI: nothing to locate or version-check.
        self.command = "pulumi"
        self.version = None
        self._history_json = history_json

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: auto.OnOutput | None = None,
        on_error: auto.OnOutput | None = None,
    ) -> auto.CommandResult:
        stdout = self._history_json if args[:2] == ["stack", "history"] else ""
        return auto.CommandResult(stdout=stdout, stderr="", code=0)


def recorded_history(name: str, work_dir: Path) -> list[auto.UpdateSummary]:
    """The ``UpdateSummary`` list of ``tests/data/<name>``, parsed by ``auto.Stack.history``."""
    workspace = auto.LocalWorkspace(work_dir=str(work_dir), pulumi_command=RecordedCli((DATA / name).read_text()))
    return auto.Stack.select("dev", workspace).history()


def update(
    start: str,
    *,
    tag: str | None,
    result: str = "succeeded",
    kind: str = "update",
    commit: str = "",
    dirty: bool = False,
    message: str = "",
) -> auto.UpdateSummary:
    """One history entry, as the CLI records it; ``start`` is ``HH:MM`` on a fixed day; ``tag`` None omits the key."""
    environment = {"git.head": commit, "git.dirty": json.dumps(dirty)} if commit else {}
    config = {IMAGE_TAG_KEY: {"value": tag, "secret": False}} if tag is not None else {}
    return auto.UpdateSummary(
        kind=kind,
        start_time=datetime.strptime(f"2026-11-27 {start}", "%Y-%m-%d %H:%M"),
        message=message,
        environment=environment,
        config=config,
        result=result,
    )


@dataclass
class FakeStack:
    """A stack for the commands: fixed history and config, scripted update outcomes, every call and message recorded."""

    summaries: Sequence[auto.UpdateSummary]
    outcomes: list[UpOutcome] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=lambda: stack_config("dev"))
    calls: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    name: str = "dev"

    def history(self) -> list[auto.UpdateSummary]:
        return list(self.summaries)

    def config(self) -> dict[str, str]:
        return dict(self.values)

    def set_image_tag(self, tag: str) -> None:
        self.calls.append(f"set imageTag={tag}")
        self.values[IMAGE_TAG_KEY] = tag

    def preview(self) -> None:
        self.calls.append("preview")

    def up(self, message: str) -> UpOutcome:
        self.calls.append("up")
        self.messages.append(message)
        return self.outcomes.pop(0)

"""Test doubles for ``ops.releases``: recorded CLI history through the Automation API, and fake stacks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from ops import engine
from ops.releases.command import UpOutcome
from ops.releases.model import IMAGE_DIGEST_KEY, IMAGE_TAG_KEY, Release
from project import config_key
from tests.examples import example_config

#: ``pulumi stack history --json`` output captured from the sandbox (see tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"
#: Entries per page of ``pulumi stack history`` when no page size is given (the CLI's default).
CLI_PAGE_SIZE = 10


class RecordedCli(auto.PulumiCommand):
    """A Pulumi CLI that answers ``stack history`` with recorded entries and every other command with nothing.

    The Automation API parses the answer itself (``Stack.history``), so the
    tests see exactly the ``UpdateSummary`` objects a real run gives. Like
    the CLI, it pages: 10 entries unless ``--page-size``/``--page`` ask otherwise.
    """

    def __init__(self, entries: list[dict[str, object]]) -> None:
        # No real CLI: nothing to locate or version-check.
        self.command = "pulumi"
        self.version = None
        self.entries = entries
        self.history_calls: list[list[str]] = []

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: auto.OnOutput | None = None,
        on_error: auto.OnOutput | None = None,
    ) -> auto.CommandResult:
        if "history" not in args:
            return auto.CommandResult(stdout="", stderr="", code=0)
        self.history_calls.append(args)
        size = int(args[args.index("--page-size") + 1]) if "--page-size" in args else CLI_PAGE_SIZE
        page = int(args[args.index("--page") + 1]) if "--page" in args else 1
        answer = self.entries[(page - 1) * size : page * size]
        return auto.CommandResult(stdout=json.dumps(answer), stderr="", code=0)


def recorded(name: str) -> list[dict[str, object]]:
    """The entries of ``tests/data/<name>``, newest first as the CLI printed them."""
    return list(json.loads((DATA / name).read_text()))


def recorded_stack(entries: list[dict[str, object]], work_dir: Path) -> tuple[auto.Stack, RecordedCli]:
    """An Automation API stack whose CLI answers ``stack history`` with ``entries``."""
    cli = RecordedCli(entries)
    workspace = auto.LocalWorkspace(work_dir=str(work_dir), pulumi_command=cli)
    return auto.Stack.select("dev", workspace), cli


def no_git(commit: str) -> str | None:
    """An ``AppVersionAt`` for a project without git: no commit is known."""
    return None


def update(
    start: str,
    *,
    tag: str | None,
    result: str = "succeeded",
    kind: str = "update",
    commit: str = "",
    dirty: bool = False,
    message: str = "",
    digest: str | None = None,
) -> auto.UpdateSummary:
    """One history entry, as the CLI records it; ``start`` is ``HH:MM`` on a fixed day; ``tag`` None omits the key.

    ``digest`` is the ``imageDigest`` it recorded; None omits the key, as history from before the key has it.
    """
    environment = {"git.head": commit, "git.dirty": json.dumps(dirty)} if commit else {}
    config = {IMAGE_TAG_KEY: {"value": tag, "secret": False}} if tag is not None else {}
    if digest is not None:
        config[IMAGE_DIGEST_KEY] = {"value": digest, "secret": False}
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
    values: dict[str, str] = field(default_factory=lambda: example_config("dev"))
    calls: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    #: Per update: whether it ran without make up's narrowing flags (an automatic rollback).
    whole_stacks: list[bool] = field(default_factory=list)
    name: str = "dev"
    #: The resources of its current state, and of the state each release (by number) left, as a backend kept it.
    state: list[Mapping[str, Any]] = field(default_factory=list)
    recorded: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict)
    #: The causes ``record_cause`` kept (a stack's tags), by release number.
    causes: dict[int, str] = field(default_factory=dict)
    #: What ``preview_with`` reports.
    preview_report: engine.Report = field(default_factory=lambda: engine.Report(summary=engine.Summary({"same": 7})))

    def history(self) -> list[auto.UpdateSummary]:
        return list(self.summaries)

    def resources(self) -> list[Mapping[str, Any]]:
        return list(self.state)

    def recorded_resources(self, release: Release) -> list[Mapping[str, Any]] | None:
        return self.recorded.get(release.number)

    def preview_with(self, config: Mapping[str, str]) -> engine.Report:
        self.calls.append("preview with " + ", ".join(f"{k}={v}" for k, v in config.items()))
        return self.preview_report

    def config(self) -> dict[str, str]:
        return dict(self.values)

    def set_image_tag(self, tag: str) -> None:
        self.calls.append(f"set imageTag={tag}")
        self.values[IMAGE_TAG_KEY] = tag

    def set_config(self, key: str, value: str) -> None:
        self.calls.append(f"set {key}={value}")
        self.values[config_key(key)] = value

    def record_cause(self, number: int, cause: str) -> None:
        self.calls.append(f"record cause of release {number}")
        self.causes[number] = cause

    def recorded_causes(self) -> dict[int, str]:
        return dict(self.causes)

    def preview(self) -> None:
        self.calls.append("preview")

    def up(self, message: str, *, whole_stack: bool = False) -> UpOutcome:
        self.calls.append("up")
        self.messages.append(message)
        self.whole_stacks.append(whole_stack)
        return self.outcomes.pop(0)


class EventStack:
    """An Automation API stack for ``PulumiStack.up``: its ``up`` replays engine events, then fails as the CLI does.

    ``resources`` is its state afterwards, as ``pulumi stack export`` gives it.
    """

    name = "dev"

    def __init__(self, events: Sequence[auto.EngineEvent], resources: Sequence[Mapping[str, Any]] = ()) -> None:
        self.events = events
        self.resources = resources
        #: The keyword options of the last ``up``.
        self.options: dict[str, Any] = {}

    def up(self, **options: Any) -> auto.UpResult:  # noqa: ANN401  # the Automation API's many keyword options
        self.options = options
        for event in self.events:
            options["on_event"](event)
        raise auto.CommandError(auto.CommandResult(stdout="", stderr="", code=1))

    def export_stack(self) -> auto.Deployment:
        return auto.Deployment(version=3, deployment={"resources": list(self.resources)})


def step_event(op: auto.OpType, type_token: str, urn: str) -> auto.EngineEvent:
    """The engine event that starts a step (``op``) on the resource ``urn`` of type ``type_token``."""
    metadata = auto.StepEventMetadata(op=op, urn=urn, type=type_token, provider="")
    return auto.EngineEvent(sequence=0, timestamp=0, resource_pre_event=auto.ResourcePreEvent(metadata=metadata))


def step_failed_event(op: auto.OpType, type_token: str, urn: str) -> auto.EngineEvent:
    """The engine event that reports the step (``op``) on the resource ``urn`` as failed."""
    metadata = auto.StepEventMetadata(op=op, urn=urn, type=type_token, provider="")
    failed = auto.ResOpFailedEvent(metadata=metadata, status=0, steps=0)
    return auto.EngineEvent(sequence=0, timestamp=0, res_op_failed_event=failed)


def diagnostic_event(urn: str, message: str, *, severity: str = "info", ephemeral: bool = False) -> auto.EngineEvent:
    """A diagnostic the engine reports on ``urn``: an error, or a progress line (``ephemeral``)."""
    diagnostic = auto.DiagnosticEvent(message=message, color="never", severity=severity, ephemeral=ephemeral, urn=urn)
    return auto.EngineEvent(sequence=0, timestamp=0, diagnostic_event=diagnostic)

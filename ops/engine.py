"""The one door to the Pulumi engine: stacks, previews, updates, history and state, through ``pulumi.automation``.

Every operator command (``make up``, ``rollback``, ``history``, ``pr-comment``,
``pr-preview``) reaches the engine through this module, never by running the
CLI itself. A stack is always the project directory's (a local program, not
inline), so the program runs exactly as under ``pulumi up``: the CLI's Python
language host with the project's ``.venv``.

``preview`` and ``up`` return a ``Report`` built from the engine's structured
events (the ``on_event`` stream, the same records as the CLI's event log), not
from its printed text. ``report_from_events`` is that construction as a pure
function, so tests build reports from recorded events (``read_events``).
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from pulumi import automation as auto

from ops.update_flags import UpdateFlags
from project import ROOT

#: Entries per ``pulumi stack history`` page (the CLI's default page is 10, which would hide older updates).
HISTORY_PAGE_SIZE = 100

#: Receives one line of the engine's printed output (its progress display, or the CLI's stderr).
Output = Callable[[str], None]

# Pulumi's colour markup (``<{%reset%}>``, ``<{%fg 1%}>``): a diagnostic keeps it in its message and names the
# colouring to apply in ``color``. Removing it is what the CLI's ``--color never`` does; the words stay as they are.
_COLOR_MARKUP = re.compile(r"<\{%[^%]*%\}>")


def _plain(message: str) -> str:
    return _COLOR_MARKUP.sub("", message)


@dataclass(frozen=True)
class State:
    """One side of a step: the resource's type, inputs and outputs as the engine reported them."""

    type: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of the engine: what happens to one resource.

    ``old`` and ``new`` are the states the step starts from and aims at (its
    ``resourcePreEvent``); ``result`` is the state it produced (its
    ``resOutputsEvent``: after an update the outputs read back, after a refresh
    the live object), None until it finished. ``failed`` when the engine
    reported the step's operation as failed (``resOpFailedEvent``).
    ``detailed_diff`` maps a property path to its kind of change (``add``,
    ``update``, ``delete``, and their ``-replace`` forms).
    """

    op: str
    urn: str
    type: str
    old: State | None = None
    new: State | None = None
    detailed_diff: Mapping[str, str] = field(default_factory=dict)
    result: State | None = None
    failed: bool = False

    def inputs(self, side: str) -> Mapping[str, Any]:
        """The ``old`` or ``new`` side's inputs (empty when that side does not exist)."""
        state = self.old if side == "old" else self.new
        return state.inputs if state is not None else {}

    def outputs(self, side: str) -> Mapping[str, Any]:
        """The ``old`` or ``new`` side's outputs (empty when that side does not exist)."""
        state = self.old if side == "old" else self.new
        return state.outputs if state is not None else {}


@dataclass(frozen=True)
class Diagnostic:
    """A message of the engine, a provider or the program, with its severity (``error``, ``warning``, ``info``…).

    ``urn`` is the resource it is about (empty for the stack as a whole);
    ``ephemeral`` messages are progress lines, replaced by the next one.
    ``prefix`` is what the CLI prints before the message (``error: ``).
    """

    severity: str
    message: str
    urn: str = ""
    ephemeral: bool = False
    prefix: str = ""

    @property
    def text(self) -> str:
        """The diagnostic as the CLI prints it: its prefix, then its message."""
        return f"{self.prefix}{self.message}"


@dataclass(frozen=True)
class PolicyViolation:
    """One violation a policy pack reported; ``urn`` is empty for a stack policy."""

    pack: str
    policy: str
    enforcement: str
    message: str
    urn: str


@dataclass(frozen=True)
class Summary:
    """The engine's summary: changes by op (``same``, ``update``…) and the policy packs that ran, by name."""

    resource_changes: Mapping[str, int]
    policy_packs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """What one preview or update did, from the engine's events.

    ``config`` is the stack config the engine ran with (its prelude), Pulumi.yaml's
    defaults included. ``command_failed`` when the CLI exited non-zero, and
    ``stderr`` its own error output (a locked stack, a missing plugin: nothing
    of that is an engine event).
    """

    steps: tuple[Step, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    policy_violations: tuple[PolicyViolation, ...] = ()
    summary: Summary | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    command_failed: bool = False
    stderr: str = ""

    @property
    def errors(self) -> list[Diagnostic]:
        """The error diagnostics."""
        return [item for item in self.diagnostics if item.severity == "error"]

    @property
    def failed(self) -> bool:
        """Failed when the CLI failed, the engine never summed up, or anything reported an error."""
        return self.command_failed or self.summary is None or bool(self.errors)

    @property
    def policy_packs(self) -> tuple[str, ...]:
        """Every policy pack that ran, by name: the summary's, then any only a violation names."""
        packs = list(self.summary.policy_packs if self.summary else ())
        packs += [v.pack for v in self.policy_violations if v.pack and v.pack not in packs]
        return tuple(dict.fromkeys(packs))

    def changes(self) -> dict[str, int]:
        """The summary's changes by op, e.g. ``{"same": 6, "update": 1}``; empty without a summary."""
        return dict(self.summary.resource_changes) if self.summary else {}

    def steps_on(self, urn: str) -> list[Step]:
        """The steps on one resource, in order (a refresh's, then the update's)."""
        return [step for step in self.steps if step.urn == urn]

    def diagnostics_on(self, urn: str) -> list[Diagnostic]:
        """The diagnostics about one resource, in order."""
        return [item for item in self.diagnostics if item.urn == urn]


def _state(metadata: auto.StepEventStateMetadata | None) -> State | None:
    if metadata is None:
        return None
    return State(type=metadata.type, inputs=metadata.inputs or {}, outputs=metadata.outputs or {})


def _op(value: auto.OpType | str) -> str:
    # An OpType member, or, as parsed from JSON, its plain string value.
    return auto.OpType(value).value


def _step(metadata: auto.StepEventMetadata) -> Step:
    return Step(
        op=_op(metadata.op),
        urn=metadata.urn,
        type=metadata.type,
        old=_state(metadata.old),
        new=_state(metadata.new),
        detailed_diff={path: diff.diff_kind.value for path, diff in (metadata.detailed_diff or {}).items()},
    )


def _pack_name(key: str) -> str:
    # The summary names a pack as "<name>|<source>|<path>" (older CLIs: the name alone).
    return key.split("|", 1)[0]


def report_from_events(events: Iterable[auto.EngineEvent], *, command_failed: bool = False, stderr: str = "") -> Report:
    """The report of one preview or update, from its engine events in order.

    A step is opened by its ``resourcePreEvent``; its ``resOutputsEvent`` or
    ``resOpFailedEvent`` completes the latest open step of the same resource and op.
    """
    steps: list[Step] = []
    diagnostics: list[Diagnostic] = []
    violations: list[PolicyViolation] = []
    summary: Summary | None = None
    config: Mapping[str, str] = {}

    def complete(metadata: auto.StepEventMetadata, **changes: Any) -> None:  # noqa: ANN401  # Step fields
        op = _op(metadata.op)
        for index in range(len(steps) - 1, -1, -1):
            if steps[index].urn == metadata.urn and steps[index].op == op:
                steps[index] = replace(steps[index], **changes)
                return
        # A completion without its opening event (a truncated log): the step as the completion describes it.
        steps.append(replace(_step(metadata), **changes))

    for event in events:
        if event.prelude_event is not None:
            config = {str(key): str(value) for key, value in (event.prelude_event.config or {}).items()}
        elif event.resource_pre_event is not None:
            steps.append(_step(event.resource_pre_event.metadata))
        elif event.res_outputs_event is not None:
            metadata = event.res_outputs_event.metadata
            complete(metadata, result=_state(metadata.new))
        elif event.res_op_failed_event is not None:
            complete(event.res_op_failed_event.metadata, failed=True)
        elif event.diagnostic_event is not None:
            diagnostic = event.diagnostic_event
            diagnostics.append(
                Diagnostic(
                    severity=diagnostic.severity,
                    message=_plain(diagnostic.message),
                    urn=diagnostic.urn or "",
                    ephemeral=bool(diagnostic.ephemeral),
                    prefix=_plain(diagnostic.prefix or ""),
                )
            )
        elif event.policy_event is not None:
            policy = event.policy_event
            violation = PolicyViolation(
                pack=policy.policy_pack_name,
                policy=policy.policy_name,
                enforcement=policy.enforcement_level,
                message=_plain(policy.message).strip(),
                urn=policy.resource_urn or "",
            )
            # The engine reports a violation again when a resource is checked twice (its refresh and its update).
            if violation not in violations:
                violations.append(violation)
        elif event.summary_event is not None:
            ran = event.summary_event.policy_packs or {}
            summary = Summary(
                resource_changes={_op(op): count for op, count in (event.summary_event.resource_changes or {}).items()},
                policy_packs=tuple(dict.fromkeys(_pack_name(str(key)) for key in ran)),
            )
    return Report(
        steps=tuple(steps),
        diagnostics=tuple(diagnostics),
        policy_violations=tuple(violations),
        summary=summary,
        config=config,
        command_failed=command_failed,
        stderr=stderr,
    )


def read_events(lines: Iterable[str]) -> list[auto.EngineEvent]:
    """Engine events from JSON lines (an event log, or a recording of ``on_event``), parsed as the API parses them."""
    return [auto.EngineEvent.from_json(json.loads(line)) for line in lines if line.strip()]


# ---------------------------------------------------------------------------
# Stacks


class NoSuchStack(Exception):
    """The stack does not exist in this backend (and was not to be created)."""


def open_stack(name: str, *, create: bool, work_dir: Path = ROOT) -> auto.Stack:
    """The stack ``name`` of the project in ``work_dir``: selected, or created first when ``create``."""
    if create:
        return auto.create_or_select_stack(stack_name=name, work_dir=str(work_dir))
    try:
        return auto.select_stack(stack_name=name, work_dir=str(work_dir))
    except auto.StackNotFoundError:
        raise NoSuchStack(name) from None


def stack_names(work_dir: Path = ROOT) -> list[str]:
    """The short names of the project's stacks in the current backend (``pulumi stack ls``)."""
    workspace = auto.LocalWorkspace(work_dir=str(work_dir))
    return [summary.name.rsplit("/", 1)[-1] for summary in workspace.list_stacks()]


def backend_url(stack: auto.Stack) -> str:
    """The URL of the backend the stack lives in (``pulumi whoami``): ``file://…``, ``s3://…``, ``https://…``."""
    return stack.workspace.who_am_i().url or ""


def history(stack: auto.Stack) -> list[auto.UpdateSummary]:
    """Every recorded operation of the stack, newest first, all pages (the CLI shows the newest 10 unless paged).

    Secret config values stay ``[secret]``: nothing reads them from history, and decrypting them costs each read
    the passphrase's key derivation (0.29 s against 0.13 s per read, measured with the sandbox's CLI).
    """
    found: list[auto.UpdateSummary] = []
    page = 1
    while True:
        entries = stack.history(page_size=HISTORY_PAGE_SIZE, page=page, show_secrets=False)
        found.extend(entries)
        if len(entries) < HISTORY_PAGE_SIZE:
            return found
        page += 1


def config(stack: auto.Stack) -> dict[str, str]:
    """The stack's config under full keys, Pulumi.yaml's declared defaults included (``pulumi config --json``)."""
    return {key: value.value for key, value in stack.get_all_config().items()}


def set_config(stack: auto.Stack, key: str, value: str) -> None:
    """Set one plain (not secret) config value; ``key`` is a full key (``k8s-demo:imageTag``)."""
    stack.set_config(key, auto.ConfigValue(value))


def resources(stack: auto.Stack) -> list[Mapping[str, Any]]:
    """The resources of the stack's state (``pulumi stack export``), each with its type, URN, inputs and outputs.

    After a failed update this holds what the provider recorded of the
    failed operation: the Kubernetes provider records the live object of an
    await that failed (``initErrors`` beside it), status included.
    """
    deployment = stack.export_stack().deployment or {}
    return list(deployment.get("resources") or [])


class _Recorder:
    """Collects the engine events and the CLI's stderr of one operation, passing both on to the caller's callbacks."""

    def __init__(self, on_error: Output | None, on_event: Callable[[auto.EngineEvent], None] | None) -> None:
        self.events: list[auto.EngineEvent] = []
        self.stderr: list[str] = []
        self._on_error = on_error
        self._on_event = on_event

    def event(self, event: auto.EngineEvent) -> None:
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def error(self, line: str) -> None:
        self.stderr.append(line)
        if self._on_error is not None:
            self._on_error(line)

    def report(self, *, command_failed: bool) -> Report:
        return report_from_events(self.events, command_failed=command_failed, stderr="\n".join(self.stderr))


#: What ``Stack.up`` is told its history says, when it was not read (see ``_update_only``).
_NOT_READ = auto.UpdateSummary(
    kind="update", start_time=datetime.fromtimestamp(0, tz=UTC), message="", environment={}, config={}, result="?"
)


@contextmanager
def _update_only(stack: auto.Stack) -> Iterator[None]:
    """``stack.up`` without the three CLI runs the Automation API makes after the update.

    ``Stack.up`` returns the stack's outputs and its newest history entry, read with
    ``pulumi stack output --json``, again with ``--show-secrets``, and ``pulumi stack history``:
    each a CLI start and a state read, two of them with the passphrase's key derivation,
    0.5-1 s on every update (``make bench``). ``up`` reads what the update did from its engine
    events instead, so while this is open the stack answers those two reads itself, unread.
    The update runs exactly as before.
    """
    shadowed = {"outputs": lambda: {}, "info": lambda show_secrets=True: _NOT_READ}
    for name, answer in shadowed.items():
        setattr(stack, name, answer)
    try:
        yield
    finally:
        for name in shadowed:
            delattr(stack, name)


def _options(
    flags: Mapping[str, Any], *, refresh: bool, diff: bool = False, policy_packs: Sequence[str] = ()
) -> dict[str, Any]:
    """The Automation API's keyword options: the flags', with this call's own refresh, diff and policy packs added."""
    packs = [*policy_packs, *(flags.get("policy_packs") or [])]
    return {
        **flags,
        "refresh": True if refresh or flags.get("refresh") else None,
        "diff": True if diff or flags.get("diff") else None,
        "policy_packs": packs or None,
    }


def preview(
    stack: auto.Stack,
    *,
    refresh: bool = False,
    policy_packs: Sequence[str] = (),
    diff: bool = False,
    flags: UpdateFlags | None = None,
    on_output: Output | None = None,
    on_error: Output | None = None,
    on_event: Callable[[auto.EngineEvent], None] | None = None,
    config_file: Path | None = None,
) -> Report:
    """``pulumi preview``: what an update would do. A failed preview is a report too (``Report.failed``).

    ``flags`` are ``make up``'s (``--target``, ``--parallel``…), so the preview shows what that update will do.
    ``on_output`` receives the engine's display (``diff`` adds each resource's
    diff), ``on_error`` the CLI's stderr, ``on_event`` every engine event as it comes.
    ``config_file`` is read instead of the stack's own config file (``--config-file``).
    A preview records nothing: neither what its refresh read nor a history entry.
    """
    recorder = _Recorder(on_error, on_event)

    try:
        stack.preview(
            **_options(flags.preview_kwargs() if flags else {}, refresh=refresh, diff=diff, policy_packs=policy_packs),
            on_output=on_output,
            on_error=recorder.error,
            on_event=recorder.event,
            config_file=str(config_file) if config_file is not None else None,
        )
    except auto.CommandError:
        return recorder.report(command_failed=True)
    except RuntimeError:
        # The Automation API's "summary event never found": the engine stopped before it summed up.
        return recorder.report(command_failed=True)
    return recorder.report(command_failed=False)


def up(
    stack: auto.Stack,
    *,
    message: str,
    refresh: bool = False,
    flags: UpdateFlags | None = None,
    on_output: Output | None = None,
    on_error: Output | None = None,
    on_event: Callable[[auto.EngineEvent], None] | None = None,
) -> Report:
    """``pulumi up --yes --skip-preview`` with ``message``: the update, waiting for every await.

    ``flags`` are Pulumi's update flags ``make up`` was given, passed on with their meaning. A failed update is a
    report too. Only the update runs: the outputs and history ``Stack.up`` would read after it are not read
    (``_update_only``); the report says what the update did.
    """
    recorder = _Recorder(on_error, on_event)

    try:
        with _update_only(stack):
            stack.up(
                **_options(flags.up_kwargs() if flags else {}, refresh=refresh),
                message=message,
                on_output=on_output,
                on_error=recorder.error,
                on_event=recorder.event,
            )
    except auto.CommandError:
        return recorder.report(command_failed=True)
    return recorder.report(command_failed=False)


def cancel_update() -> bool:
    """Stop the update this process runs now, as Ctrl-C stops ``pulumi up``; False when none runs.

    The Automation API runs the update as a ``pulumi up`` child process and offers no way to stop it on a file
    backend (``Stack.cancel`` is ``pulumi cancel``, which only the Pulumi Cloud backend implements). One SIGINT to
    that child makes the engine cancel its operations: the Kubernetes provider's await returns ``context
    canceled``, the update ends as failed, and the state is written with no pending operation, so the next update
    runs as usual. Never a second SIGINT: that makes the CLI exit at once, leaving pending operations behind.
    """
    stopped = False
    for child in psutil.Process(os.getpid()).children():
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if argv and os.path.basename(argv[0]) == "pulumi" and "up" in argv[1:]:
            try:
                child.send_signal(signal.SIGINT)
            except psutil.NoSuchProcess:
                continue
            stopped = True
    return stopped

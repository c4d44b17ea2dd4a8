"""Where the time of one ``pulumi up`` or ``pulumi preview`` goes, from Pulumi's own OpenTelemetry trace.

The CLI writes its trace with ``--otel-traces file://<path>`` (Pulumi 3.260:
OTLP JSON, one ``{"resourceSpans": [...]}`` object per line), with the spans of
the language host (``pulumi-language-python``), the program's SDK
(``pulumi-sdk-python``) and the providers in the same file. ``breakdown`` cuts
the run's critical path into consecutive phases at span boundaries, so the
phases add up to the measured wall time exactly:

- the CLI's own start (from the caller's clock to the CLI's root span);
- the update's metadata: the language host's ``About`` (``python`` and ``pip --version``);
- plugin discovery: the language host's ``GetRequiredPackages`` (``pip list`` and a script);
- the refresh: the kubernetes provider's start, ``Configure`` and one ``Read`` per resource;
- the program: the interpreter and the SDK's import, then the program's own imports and
  settings, then its registrations (during which the engine diffs and updates, the
  rollout's await included), then the interpreter's exit;
- the engine's shutdown and the last state write;
- after the CLI: its exit and whatever the caller runs after it (the Automation API's
  ``Stack.up`` reads the outputs twice and the history once).

Work inside those phases (diffs, update calls, state writes, provider starts) is
listed apart: it overlaps the program's run. Test tooling only (``make bench``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The service names the CLI, the language host and the Python SDK give their spans.
CLI, LANGUAGE_HOST, SDK = "pulumi-cli", "pulumi-language-python", "pulumi-sdk-python"


@dataclass(frozen=True)
class Span:
    """One span: which process, what, from when to when (seconds since the epoch)."""

    service: str
    name: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _value(value: dict[str, Any]) -> Any:  # noqa: ANN401  # an OTLP AnyValue: string, int, bool, list...
    return next(iter(value.values())) if value else None


def read_spans(lines: Iterable[str]) -> list[Span]:
    """The spans of an OTLP JSON trace file (one export request per line), in start order."""
    spans = []
    for line in lines:
        if not line.strip():
            continue
        for resource in json.loads(line).get("resourceSpans", []):
            attributes = {a["key"]: _value(a["value"]) for a in resource.get("resource", {}).get("attributes", [])}
            service = str(attributes.get("service.name", "?"))
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    spans.append(
                        Span(
                            service=service,
                            name=span["name"],
                            start=int(span["startTimeUnixNano"]) / 1e9,
                            end=int(span["endTimeUnixNano"]) / 1e9,
                            attributes={a["key"]: _value(a["value"]) for a in span.get("attributes", [])},
                        )
                    )
    return sorted(spans, key=lambda s: s.start)


def read_trace(path: Path) -> list[Span]:
    return read_spans(path.read_text(encoding="utf-8").splitlines())


@dataclass(frozen=True)
class Breakdown:
    """Consecutive ``phases`` (label, seconds) that add up to ``total``; ``within``: work inside them."""

    phases: tuple[tuple[str, float], ...]
    within: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(seconds for _, seconds in self.phases)

    def seconds(self, label: str) -> float:
        return dict(self.phases)[label]


class MissingSpan(LookupError):
    """The trace lacks a span the breakdown needs (a failed run, another CLI version)."""


def _first(spans: Sequence[Span], service: str, name: str, after: float = 0.0) -> Span:
    for span in spans:
        if span.service == service and span.name == name and span.start >= after:
            return span
    raise MissingSpan(f"no {service} span {name!r} in the trace")


def _rpc(name: str) -> str:
    return name.rsplit("/", 1)[-1]


#: Labels of the phases, in order.
CLI_START = "CLI start (exec to its first span)"
CLI_SETUP = "CLI: project, stack, backend"
ABOUT = "update metadata: language host About (python, pip --version)"
STATE_READ = "state read, language host start"
PLUGINS = "plugin discovery: GetRequiredPackages (pip list)"
REFRESH = "refresh: provider start, Configure, reads"
INTERPRETER = "program: interpreter start, pulumi SDK import"
PROGRAM_IMPORTS = "program: its imports, settings"
REGISTRATIONS = "program: registrations, diffs, update calls"
INTERPRETER_EXIT = "program: interpreter exit"
SHUTDOWN = "engine shutdown, last state write"
AFTER = "CLI exit, then the caller's reads"


def breakdown(spans: Sequence[Span], called: float, returned: float) -> Breakdown:
    """The critical path of one ``pulumi up``/``preview`` called at ``called`` and returned at ``returned``.

    Both are the caller's wall clock (``time.time()``), the clock the trace's timestamps use.
    """
    root = _first(spans, CLI, "pulumi")
    about = _first(spans, CLI, "pulumirpc.LanguageRuntime/About")
    plugins = _first(spans, CLI, "pulumirpc.LanguageRuntime/GetRequiredPackages")
    program = _first(spans, CLI, "run-program")
    python = _first(spans, LANGUAGE_HOST, "execPython")
    connected = _first(spans, SDK, "/pulumirpc.ResourceMonitor/GetDeploymentInfo")
    registered = _first(spans, SDK, "/pulumirpc.ResourceMonitor/RegisterResource")
    done = _first(spans, SDK, "/pulumirpc.ResourceMonitor/SignalAndWaitForShutdown")
    bounds = [
        (CLI_START, called, root.start),
        (CLI_SETUP, root.start, about.start),
        (ABOUT, about.start, about.end),
        (STATE_READ, about.end, plugins.start),
        (PLUGINS, plugins.start, plugins.end),
        (REFRESH, plugins.end, program.start),
        (INTERPRETER, program.start, connected.start),
        (PROGRAM_IMPORTS, connected.start, registered.start),
        (REGISTRATIONS, registered.start, done.start),
        (INTERPRETER_EXIT, done.start, python.end),
        (SHUTDOWN, python.end, root.end),
        (AFTER, root.end, returned),
    ]
    cli = [s for s in spans if s.service == CLI]
    provider_calls = [s for s in cli if s.name.startswith("pulumirpc.ResourceProvider/")]
    refresh_reads = [s for s in provider_calls if _rpc(s.name) == "Read" and s.start < program.start]
    updates = [s for s in provider_calls if _rpc(s.name) in ("Create", "Update", "Delete")]
    diffs = [s for s in provider_calls if _rpc(s.name) in ("Check", "Diff") and s.start >= program.start]
    starts = [s for s in cli if s.name == "newPlugin" and str(s.attributes.get("kind")) == "resource"]
    configures = [s for s in provider_calls if _rpc(s.name) in ("Configure", "CheckConfig", "DiffConfig")]
    saves = [s for s in cli if s.name == "gocloud.dev/blob.Copy"]
    within = [
        (f"provider plugin starts: {len(starts)} ({_names(starts)})", sum(s.seconds for s in starts)),
        (f"provider Configure/CheckConfig/DiffConfig: {len(configures)}", sum(s.seconds for s in configures)),
        (f"refresh reads: {len(refresh_reads)}, first start to last end", _extent(refresh_reads)),
        (f"Check + Diff calls: {len(diffs)}", sum(s.seconds for s in diffs)),
        (f"update calls (Create/Update/Delete): {len(updates)}", sum(s.seconds for s in updates)),
        (f"state saves: {len(saves)} (backup copy + write spans)", _save_seconds(cli, saves)),
    ]
    return Breakdown(
        phases=tuple((label, max(0.0, end - start)) for label, start, end in bounds),
        within=tuple(within),
    )


def _names(starts: Sequence[Span]) -> str:
    return ", ".join(str(s.attributes.get("prefix", "?")).split(" ", 1)[0] for s in starts) or "none"


def _extent(spans: Sequence[Span]) -> float:
    return max(s.end for s in spans) - min(s.start for s in spans) if spans else 0.0


def _save_seconds(cli: Sequence[Span], saves: Sequence[Span]) -> float:
    """Each save: from its backup copy to the end of the next blob writer's span (the write itself is unspanned)."""
    total = 0.0
    for save in saves:
        writer = next((s for s in cli if s.name == "gocloud.dev/blob.NewWriter" and s.start >= save.start), None)
        total += (writer.end if writer is not None else save.end) - save.start
    return total


def table(title: str, result: Breakdown, measured: float) -> list[str]:
    """The breakdown as Markdown table lines, the measured wall time last."""
    lines = [title, f"| {'phase':<62} | {'seconds':>7} |", f"|{'-' * 64}|{'-' * 9}|"]
    lines += [f"| {label:<62} | {seconds:>7.2f} |" for label, seconds in result.phases]
    lines.append(f"| {'sum of the phases (= wall time, ' + f'{measured:.2f} s)':<62} | {result.total:>7.2f} |")
    lines += [f"| {'  within: ' + label:<62} | {seconds:>7.2f} |" for label, seconds in result.within]
    return lines

"""``tests/e2e/trace_breakdown.py`` (``make bench``): an OpenTelemetry trace of one update cut into phases."""

from __future__ import annotations

import json

import pytest

from tests.e2e.trace_breakdown import (
    ABOUT,
    AFTER,
    CLI_START,
    INTERPRETER_EXIT,
    PLUGINS,
    MissingSpan,
    breakdown,
    read_spans,
)

T0 = 1_800_000_000.0


def span(name: str, start: float, end: float, **attributes: str) -> dict[str, object]:
    return {
        "name": name,
        "startTimeUnixNano": str(int((T0 + start) * 1e9)),
        "endTimeUnixNano": str(int((T0 + end) * 1e9)),
        "attributes": [{"key": key, "value": {"stringValue": value}} for key, value in attributes.items()],
    }


def export(service: str, *spans: dict[str, object]) -> str:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]})


UPDATE = [
    export(
        "pulumi-cli",
        span("pulumi", 0.1, 3.0),
        span("pulumirpc.LanguageRuntime/About", 0.2, 0.5),
        span("pulumirpc.LanguageRuntime/GetRequiredPackages", 0.55, 1.0),
        span("newPlugin", 1.0, 1.1, kind="resource", prefix="kubernetes (resource)"),
        span("pulumirpc.ResourceProvider/Read", 1.2, 1.3),
        span("run-program", 1.4, 2.8),
        span("pulumirpc.ResourceProvider/Update", 2.0, 2.4),
    ),
    export("pulumi-language-python", span("execPython", 1.41, 2.79)),
    export(
        "pulumi-sdk-python",
        span("/pulumirpc.ResourceMonitor/GetDeploymentInfo", 1.7, 1.71),
        span("/pulumirpc.ResourceMonitor/RegisterResource", 1.9, 1.95),
        span("/pulumirpc.ResourceMonitor/SignalAndWaitForShutdown", 2.5, 2.51),
    ),
]


def test_the_phases_add_up_to_the_wall_time() -> None:
    result = breakdown(read_spans(UPDATE), T0, T0 + 3.25)
    assert result.total == pytest.approx(3.25)


def test_each_phase_is_the_time_between_its_spans() -> None:
    result = breakdown(read_spans(UPDATE), T0, T0 + 3.25)
    phases = (CLI_START, ABOUT, PLUGINS, INTERPRETER_EXIT, AFTER)
    assert [round(result.seconds(label), 3) for label in phases] == [0.1, 0.3, 0.45, 0.29, 0.25]


def test_update_calls_are_listed_within_the_phases() -> None:
    within = dict(breakdown(read_spans(UPDATE), T0, T0 + 3.25).within)
    assert within["update calls (Create/Update/Delete): 1"] == pytest.approx(0.4)


def test_a_trace_without_the_language_host_is_refused() -> None:
    with pytest.raises(MissingSpan, match="execPython"):
        breakdown(read_spans(UPDATE[:1]), T0, T0 + 3.25)

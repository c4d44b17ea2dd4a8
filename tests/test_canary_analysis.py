"""The canary's verdict (pure, table-driven) and what it reads: the pods' access logs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from components.rollout import CanaryPlan
from ops.releases.analysis import ABORT, CONTINUE, PROMOTE, Sample, decide, parse_log
from project import ROOT

PLAN = CanaryPlan(replicas=1, analysis_seconds=60, max_error_rate=1.0, max_p99_ms=0, min_requests=20)
LATENCY_PLAN = CanaryPlan(replicas=1, analysis_seconds=60, max_error_rate=1.0, max_p99_ms=100, min_requests=20)


def sample(requests: int, errors: int = 0, latency_ms: float = 2.0) -> Sample:
    return Sample(requests=requests, errors=errors, latencies_ms=(latency_ms,) * requests)


@pytest.mark.parametrize(
    ("canary", "stable", "plan", "window_over", "action"),
    [
        # Thresholds: the canary's error rate against the stable's, in points.
        (sample(100, 0), sample(300, 0), PLAN, True, PROMOTE),
        (sample(100, 1), sample(300, 0), PLAN, True, PROMOTE),  # 1.0 point: at the bound
        (sample(100, 2), sample(300, 0), PLAN, True, ABORT),  # 2.0 points: above it
        (sample(100, 100), sample(300, 0), PLAN, False, ABORT),  # a failure is decided before the window ends
        (sample(100, 0), sample(300, 0), PLAN, False, CONTINUE),  # a pass is not
        # Too few requests: nothing before the window ends, an abort at its end; never a promotion.
        (sample(19, 0), sample(300, 0), PLAN, False, CONTINUE),
        (sample(19, 19), sample(300, 0), PLAN, False, CONTINUE),
        (sample(19, 0), sample(300, 0), PLAN, True, ABORT),
        (sample(0), sample(0), PLAN, True, ABORT),
        # A baseline that fails as much is not the canary's fault; one that fails less still judges it.
        (sample(100, 50), sample(300, 150), PLAN, True, PROMOTE),
        (sample(100, 60), sample(300, 150), PLAN, True, ABORT),
        # No stable request: the baseline is 0%.
        (sample(20, 0), sample(0), PLAN, True, PROMOTE),
        (sample(20, 1), sample(0), PLAN, True, ABORT),
        # Latency: p99 against the bound, when one is set.
        (sample(100, 0, 99.0), sample(300, 0), LATENCY_PLAN, True, PROMOTE),
        (sample(100, 0, 101.0), sample(300, 0), LATENCY_PLAN, True, ABORT),
        (sample(100, 0, 5000.0), sample(300, 0), PLAN, True, PROMOTE),  # no bound
    ],
)
def test_verdict(canary: Sample, stable: Sample, plan: CanaryPlan, window_over: bool, action: str) -> None:
    assert decide(canary, stable, plan, window_over=window_over).action == action


def test_an_error_abort_names_the_rates_and_the_figures() -> None:
    verdict = decide(sample(40, 40), sample(160, 0), PLAN, window_over=False)
    assert verdict.reason == (
        "error rate 100.0% is 100.0 points above the stable pods' 0.0% (at most 1 allowed): "
        "canary 40 requests, 100.0% errors, p99 2 ms; stable 160 requests, 0.0% errors, p99 2 ms"
    )


def test_too_few_requests_says_how_many() -> None:
    verdict = decide(sample(7), sample(100), PLAN, window_over=True)
    assert verdict.reason == "too few requests to decide: the canary served 7, fewer than canaryMinRequests (20)"


def test_a_latency_abort_names_the_bound() -> None:
    verdict = decide(sample(30, 0, 250.0), sample(100), LATENCY_PLAN, window_over=True)
    assert verdict.reason.startswith("p99 latency 250 ms is above canaryMaxP99Ms (100 ms): canary 30 requests")


def test_p99_is_the_nearest_rank() -> None:
    latencies = tuple(float(ms) for ms in range(1, 101))
    assert Sample(requests=100, errors=0, latencies_ms=latencies).p99_ms == 99.0


def test_errors_are_4xx_and_5xx() -> None:
    since = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    lines = "\n".join(
        f'2026-11-30T14:00:0{i}.000000001Z {{"status":{status},"request_time":0.001,"method":"GET","uri":"/"}}'
        for i, status in enumerate((200, 304, 404, 500, 503))
    )
    found = Sample.of(parse_log(lines, since))
    assert (found.requests, found.errors) == (5, 3)


def test_log_lines_before_the_window_are_left_out() -> None:
    since = datetime(2026, 11, 30, 14, 0, 5, tzinfo=UTC)
    lines = (
        '2026-11-30T14:00:04.999999999Z {"status":500,"request_time":0.001}\n'
        '2026-11-30T14:00:05.000000000Z {"status":200,"request_time":0.250}\n'
    )
    assert [(s.status, s.seconds) for s in parse_log(lines, since)] == [(200, 0.25)]


def test_lines_that_are_not_access_log_objects_are_skipped() -> None:
    since = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    lines = (
        "2026-11-30T14:00:01.0Z /docker-entrypoint.sh: Configuration complete; ready for start up\n"
        '2026-11-30T14:00:02.0Z {"status":"x","request_time":0.1}\n'
        "2026-11-30T14:00:03.0Z {not json\n"
        '2026-11-30T14:00:04.0Z {"status":200,"request_time":0.002}\n'
    )
    assert [s.status for s in parse_log(lines, since)] == [200]


def test_nginx_logs_what_the_analysis_reads() -> None:
    # The log format's fields, as app/nginx.conf writes them, parse into a request.
    conf = (ROOT / "app" / "nginx.conf").read_text(encoding="utf-8")
    assert ('"status":$status' in conf, '"request_time":$request_time' in conf, "access_log /dev/stdout" in conf) == (
        True,
        True,
        True,
    )

"""What a canary's pods served, next to the stable pods', and the verdict: pure functions over access logs.

The pods' nginx writes one JSON object per request to stdout (``app/nginx.conf``,
``log_format k8s_demo_json``); the Kubernetes logs API returns those lines with
the time the container runtime received each (``timestamps=true``). A ``Sample``
is the requests of one track (canary or stable) over one window; ``decide``
compares two samples against the stack's ``CanaryPlan``. No I/O here: the
canary release (``ops.releases.canary``) reads the logs and acts on the verdict.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from components.rollout import CanaryPlan

#: A status from this one on counts as an error: the page was not served (4xx: missing, 5xx: broken).
ERROR_STATUS = 400


@dataclass(frozen=True)
class Served:
    """One request a pod answered: when (UTC), its HTTP status, and nginx's ``$request_time`` in seconds."""

    time: datetime
    status: int
    seconds: float


def parse_log(text: str, since: datetime) -> list[Served]:
    """The requests of a pod's log (read with ``timestamps``) written at ``since`` (UTC) or later.

    Lines that are not an access-log object (nginx's start-up notices, its error log) are skipped.
    """
    found = []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        if not rest.startswith("{"):
            continue
        try:
            when = datetime.fromisoformat(stamp)
            entry = json.loads(rest)
            served = Served(when, int(entry["status"]), float(entry["request_time"]))
        except (ValueError, KeyError, TypeError):
            continue
        if served.time >= since:
            found.append(served)
    return found


@dataclass(frozen=True)
class Sample:
    """The requests one track served in a window: how many, how many failed (status >= 400), and their latencies."""

    requests: int = 0
    errors: int = 0
    latencies_ms: tuple[float, ...] = field(default=())

    @classmethod
    def of(cls, served: Iterable[Served]) -> Sample:
        items = list(served)
        return cls(
            requests=len(items),
            errors=sum(1 for s in items if s.status >= ERROR_STATUS),
            latencies_ms=tuple(s.seconds * 1000 for s in items),
        )

    @property
    def error_rate(self) -> float:
        """Errors in percent of requests; 0 for no requests."""
        return 100 * self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float:
        """The 99th percentile latency in milliseconds (nearest rank); 0 for no requests."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]

    def describe(self) -> str:
        """``120 requests, 1.7% errors, p99 4 ms``."""
        if not self.requests:
            return "0 requests"
        return f"{self.requests} requests, {self.error_rate:.1f}% errors, p99 {self.p99_ms:.0f} ms"


#: Verdicts: keep analysing, promote the canary, abort it.
CONTINUE = "continue"
PROMOTE = "promote"
ABORT = "abort"


@dataclass(frozen=True)
class Verdict:
    """What to do with the canary, and why, with the figures that decided it."""

    action: str
    reason: str


def decide(canary: Sample, stable: Sample, plan: CanaryPlan, *, window_over: bool) -> Verdict:
    """The canary's verdict from its requests and the stable pods' over the same window.

    - Too few canary requests (under ``plan.min_requests``): nothing is decided before the window is over,
      and at its end the canary is aborted: it is never promoted without evidence.
    - Errors: the canary fails when its error rate exceeds the stable's by more than ``plan.max_error_rate``
      points. A baseline that fails as much (a backend both depend on, a bad link) is not the canary's fault.
      With no stable request the baseline is 0%.
    - Latency: with ``plan.max_p99_ms`` > 0, the canary fails when its p99 exceeds it.

    A failure is decided as soon as the canary has its minimum of requests; a pass only once the window is over.
    """
    if canary.requests < plan.min_requests:
        if not window_over:
            return Verdict(CONTINUE, f"{canary.requests} of {plan.min_requests} canary requests so far")
        return Verdict(
            ABORT,
            f"too few requests to decide: the canary served {canary.requests}, "
            f"fewer than canaryMinRequests ({plan.min_requests})",
        )
    excess = canary.error_rate - stable.error_rate
    figures = f"canary {canary.describe()}; stable {stable.describe()}"
    if excess > plan.max_error_rate:
        return Verdict(
            ABORT,
            f"error rate {canary.error_rate:.1f}% is {excess:.1f} points above the stable pods' "
            f"{stable.error_rate:.1f}% (at most {plan.max_error_rate:g} allowed): {figures}",
        )
    if plan.max_p99_ms and canary.p99_ms > plan.max_p99_ms:
        return Verdict(
            ABORT,
            f"p99 latency {canary.p99_ms:.0f} ms is above canaryMaxP99Ms ({plan.max_p99_ms} ms): {figures}",
        )
    if not window_over:
        return Verdict(CONTINUE, figures)
    return Verdict(PROMOTE, f"within bounds: {figures}")

"""A bounded HTTP load generator for the real node: what users would see during a release.

It sends ``GET /`` to one NodePort on 127.0.0.1 (and refuses any other
address) at a fixed rate, with at most a few requests in flight, and stops by
itself after a hard time limit even if nobody stops it. Each request opens a
new connection (``Connection: close``), as a fresh visitor does, so every
request goes through kube-proxy's load balancing again and a pod that stopped
accepting shows up as a failure rather than hiding behind a kept-alive
connection.

For every request it records when it started and ended, the HTTP status or
the error, its latency and the app version the page names.
"""

from __future__ import annotations

import http.client
import re
import statistics
import threading
import time
from dataclasses import dataclass, field

#: The only host the generator talks to: the node's loopback NodePort.
HOST = "127.0.0.1"
#: Defaults: 40 requests/s, at most 4 in flight, 5 s per request, and never more than 10 minutes.
RATE = 40.0
CONCURRENCY = 4
REQUEST_TIMEOUT = 5.0
MAX_SECONDS = 600.0
#: The version the page names (app/index.html: ``<span id="version">0.2</span>``).
VERSION = re.compile(r'<span id="version">([^<]+)</span>')


@dataclass(frozen=True)
class Request:
    """One request: monotonic start and end (s), HTTP status (0 if none), error, page version."""

    started: float
    ended: float
    status: int
    error: str
    version: str

    @property
    def failed(self) -> bool:
        """A connection error, a timeout, or any status but 200."""
        return self.status != 200 or bool(self.error)

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Traffic:
    """Sends requests to ``http://127.0.0.1:<port>/`` from ``__enter__`` until ``__exit__`` (or MAX_SECONDS).

    ``rate`` requests/s are started on a fixed schedule by ``concurrency``
    worker threads; when every worker is busy the next request waits, so the
    rate and the concurrency are both upper bounds.
    """

    port: int
    rate: float = RATE
    concurrency: int = CONCURRENCY
    timeout: float = REQUEST_TIMEOUT
    max_seconds: float = MAX_SECONDS
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _next: float = 0.0
    _deadline: float = 0.0
    _workers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 50 or not 1 <= self.concurrency <= 4 or self.max_seconds > MAX_SECONDS:
            raise ValueError("traffic is bounded: rate 0-50 requests/s, 1-4 in flight, at most 600 s")

    def _slot(self) -> float | None:
        """The start time of the next request on the schedule, or None once stopped."""
        with self._lock:
            start, self._next = self._next, self._next + 1 / self.rate
        if start >= self._deadline:
            return None
        if self._stop.wait(max(0.0, start - time.monotonic())):
            return None
        return start

    def _one(self) -> Request:
        started = time.monotonic()
        connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace")
            found = VERSION.search(body)
            return Request(started, time.monotonic(), response.status, "", found.group(1) if found else "")
        except (OSError, http.client.HTTPException) as error:
            return Request(started, time.monotonic(), 0, f"{type(error).__name__}: {error}", "")
        finally:
            connection.close()

    def _work(self) -> None:
        while self._slot() is not None:
            done = self._one()
            with self._lock:
                self.requests.append(done)

    def __enter__(self) -> Traffic:
        self._next = time.monotonic()
        self._deadline = self._next + self.max_seconds
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.concurrency)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)

    def snapshot(self) -> list[Request]:
        """The requests finished so far, in start order."""
        with self._lock:
            return sorted(self.requests, key=lambda r: r.started)


def failures(requests: list[Request]) -> list[Request]:
    return [r for r in requests if r.failed]


def versions(requests: list[Request]) -> set[str]:
    """The versions that answered."""
    return {r.version for r in requests if not r.failed}


def percentile(values: list[float], percent: int) -> float:
    """The ``percent``-th percentile (inclusive method); 0.0 for no values."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def summary(requests: list[Request]) -> str:
    """``N requests, F failed, p50 X ms, p99 Y ms, versions {...}``: for assertion messages and the bench."""
    latencies = [r.latency for r in requests if not r.failed]
    return (
        f"{len(requests)} requests, {len(failures(requests))} failed, "
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"versions {sorted(versions(requests))}"
    )

"""The pre-flight's cost in a ``make up`` that passes it: the limit is 0.5 s (``make bench``).

Side by side in one run, on one sandbox cluster and project copy (the venv in
place, the sandbox's CLI on PATH, a stack whose update builds the app's
version, so every check runs: the CLI, the kubeconfig and the API server, the
Docker engine, the cluster's image): ``make preflight-up``, the pre-flight
exactly as ``make up`` runs it first, and ``make up ARGS=--yes`` with nothing
to change, which includes it. Each ``RUNS`` times; medians and the largest.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.operator import make
from tests.e2e.sandbox import Project, running_cluster, tools_built, tools_dir

#: Runs of each command; the first ``make up`` (the deploy itself) is not counted.
RUNS = 5
#: The issue's limit on what the pre-flight adds to a ``make up`` that passes it.
LIMIT_SECONDS = 0.5
STACK = "bench-preflight"


def _timed_make(project: Project, *args: str) -> float:
    start = time.monotonic()
    done = make(project, *args, f"STACK={STACK}")
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"make {' '.join(args)} failed:\n{done.stderr}")
    return seconds


def preflight_rows(project: Project, runs: int = RUNS) -> list[tuple[str, float, str]]:
    """Rows of ``make bench``'s table: (measure, seconds, ratio)."""
    project.stack(STACK)
    _timed_make(project, "up", "ARGS=--yes")
    preflight: list[float] = []
    up: list[float] = []
    # Interleaved, so both see the same machine load.
    for _ in range(runs):
        preflight.append(_timed_make(project, "preflight-up"))
        up.append(_timed_make(project, "up", "ARGS=--yes"))
    preflight_median, up_median = statistics.median(preflight), statistics.median(up)
    return [
        (
            f"pre-flight (make preflight-up), median of {runs}",
            preflight_median,
            f"{preflight_median / LIMIT_SECONDS:.2f} x the {LIMIT_SECONDS} s limit",
        ),
        (f"pre-flight, largest of {runs}", max(preflight), f"{max(preflight) / LIMIT_SECONDS:.2f} x the limit"),
        (
            f"make up ARGS=--yes, no change, median of {runs}",
            up_median,
            f"pre-flight is {preflight_median / up_median:.1%} of it",
        ),
    ]


def main() -> int:
    if not tools_built():
        print(f"sandbox tools are not built in {tools_dir()}: run `make sandbox-tools` first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="k8s-demo-bench-preflight-") as tmp:
        workdir = Path(tmp)
        (workdir / "kwok").mkdir()
        with running_cluster("k8s-demo-bench-pf", workdir / "kwok") as cluster:
            rows = preflight_rows(Project(workdir, cluster))
    print(f"| {'measure':<46} | {'seconds':>7} | {'ratio':<30} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 32}|")
    for label, seconds, ratio in rows:
        print(f"| {label:<46} | {seconds:>7.2f} | {ratio:<30} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: how long the program takes to evaluate under mocks, per stack.

Prints a table of the median and spread over several runs in one process, with
each row's ratio to a baseline: the mock engine running an empty program. Run
with ``make bench-mocks``. Numbers depend on the machine; ratios travel better.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import pulumi

from ops.offline import ClusterMocks, run_program
from project import NAME, config_key, stack_file_config


def _empty_program() -> None:
    pulumi.runtime.set_mocks(ClusterMocks(), project=NAME, stack="bench", preview=False)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        return pulumi.Output.from_input(None)

    program()


def _timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs per row (default 15)")
    runs = parser.parse_args(argv).runs

    dev = stack_file_config("dev")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline: empty program", _empty_program),
        ("dev (builds app/VERSION)", lambda: run_program("dev", dev)),
        ("dev, imageTag=0.1 (no build)", lambda: run_program("dev", {**dev, config_key("imageTag"): "0.1"})),
        ("prod (push, digest)", lambda: run_program("prod", stack_file_config("prod"))),
        ("pr-42 (no stack file)", lambda: run_program("pr-42", stack_file_config("pr-42"))),
    ]
    # One warm-up run each, so imports and first-call costs are not measured.
    for _, action in cases:
        action()
    results = [(label, _timed(action, runs)) for label, action in cases]
    baseline = statistics.median(results[0][1])

    print(f"program evaluation under mocks, {runs} runs per row")
    print(f"| {'case':<30} | {'median ms':>9} | {'min ms':>7} | {'max ms':>7} | {'x baseline':>10} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 9}|{'-' * 9}|{'-' * 12}|")
    for label, samples in results:
        median = statistics.median(samples)
        print(
            f"| {label:<30} | {median * 1000:>9.1f} | {min(samples) * 1000:>7.1f} | "
            f"{max(samples) * 1000:>7.1f} | {median / baseline:>10.1f} |"
        )


if __name__ == "__main__":
    main()

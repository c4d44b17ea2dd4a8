"""The rollout plan: each invariant refused with its own message, and the arithmetic Kubernetes does."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from components.rollout import RolloutPlan
from components.values import IntOrPercent

#: The dev stack's plan: 10 replicas, the project defaults (1, 1, 3 s, 30 s).
DEV = RolloutPlan(replicas=10, max_surge=1, max_unavailable=1, min_ready_seconds=3, pod_ready_timeout_seconds=30)


def refused(message: str, **changes: IntOrPercent) -> None:
    fields: dict[str, Any] = dict(changes)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        replace(DEV, **fields)


def test_negative_replicas_are_refused() -> None:
    refused("replicas must be >= 0, got -1", replicas=-1)


def test_negative_min_ready_seconds_are_refused() -> None:
    refused("min_ready_seconds must be >= 0, got -3", min_ready_seconds=-3)


def test_a_pod_ready_timeout_under_one_second_is_refused() -> None:
    refused("pod_ready_timeout_seconds must be >= 1, got 0", pod_ready_timeout_seconds=0)


def test_a_negative_surge_is_refused() -> None:
    refused("max_surge must be an int >= 0 or a percentage from '0%' to '100%', got -1", max_surge=-1)


def test_a_surge_above_one_hundred_percent_is_refused() -> None:
    refused("max_surge must be an int >= 0 or a percentage from '0%' to '100%', got '101%'", max_surge="101%")


def test_an_unavailable_bound_that_is_no_percentage_is_refused() -> None:
    refused("max_unavailable must be an int >= 0 or a percentage from '0%' to '100%', got '25'", max_unavailable="25")


def test_a_boolean_bound_is_refused() -> None:
    refused("max_unavailable must be an int >= 0 or a percentage from '0%' to '100%', got True", max_unavailable=True)


def test_surge_and_unavailable_both_zero_are_refused() -> None:
    refused(
        "max_surge (0) and max_unavailable ('0%') must not both be zero, or a rollout could never start",
        max_surge=0,
        max_unavailable="0%",
    )


def test_a_progress_deadline_not_above_min_ready_seconds_is_refused() -> None:
    # Today's deadline (two batch budgets) always exceeds minReadySeconds; the check guards the formula.
    class ShortDeadline(RolloutPlan):
        @property
        def progress_deadline_seconds(self) -> int:
            return self.min_ready_seconds

    with pytest.raises(ValueError, match=r"^progress_deadline_seconds \(3\) must exceed min_ready_seconds \(3\)$"):
        ShortDeadline(replicas=1, max_surge=1, max_unavailable=1, min_ready_seconds=3, pod_ready_timeout_seconds=30)


# (replicas, maxSurge, maxUnavailable) -> (surge pods, unavailable pods, batches, least pods serving).
ARITHMETIC: list[tuple[tuple[int, IntOrPercent, IntOrPercent], tuple[int, int, int, int]]] = [
    ((10, 1, 1), (1, 1, 5, 9)),  # dev
    ((4, "25%", 0), (1, 0, 4, 4)),  # prod: a surge pod at a time, every pod keeps serving
    ((10, "25%", "25%"), (3, 2, 2, 8)),  # surge rounds up, unavailable rounds down
    ((4, "25%", "25%"), (1, 1, 2, 3)),
    ((3, 0, "10%"), (0, 1, 3, 2)),  # both round to zero pods: one may be unavailable
    ((3, "10%", "10%"), (1, 0, 3, 3)),
    ((1, 1, 1), (1, 1, 1, 0)),
    ((0, 1, 1), (1, 1, 1, 0)),  # no pods: one batch, nothing serving
    ((10, "100%", "0%"), (10, 0, 1, 10)),  # all new pods at once
    ((5, 0, "100%"), (0, 5, 1, 0)),  # every old pod may go at once
]


@pytest.mark.parametrize(("bounds", "expected"), ARITHMETIC)
def test_pod_counts_and_batches(
    bounds: tuple[int, IntOrPercent, IntOrPercent], expected: tuple[int, int, int, int]
) -> None:
    replicas, surge, unavailable = bounds
    plan = replace(DEV, replicas=replicas, max_surge=surge, max_unavailable=unavailable)
    assert (plan.surge_pods, plan.unavailable_pods, plan.batches, plan.least_serving) == expected


# (minReadySeconds, podReadyTimeoutSeconds) -> (step, progress deadline, least time, most wait), dev's 5 batches.
TIMING = [
    ((3, 30), (33, 66, 15, 231)),  # dev
    ((5, 10), (15, 30, 25, 105)),
    ((0, 1), (1, 2, 0, 7)),  # the shortest plan there is
]


@pytest.mark.parametrize(("times", "expected"), TIMING)
def test_timing(times: tuple[int, int], expected: tuple[int, int, int, int]) -> None:
    plan = replace(DEV, min_ready_seconds=times[0], pod_ready_timeout_seconds=times[1])
    assert (plan.step_seconds, plan.progress_deadline_seconds, plan.least_seconds, plan.most_wait_seconds) == expected

"""The rollout plan: a Deployment's rolling-update bounds and the timing that follows from them.

The one place that turns replicas, maxSurge, maxUnavailable, minReadySeconds
and the pod-ready budget into pod counts, batches and timeouts. The web app
component sets its Deployment and ``pulumi up``'s wait from it; the PR
comment shows its figures; the benchmark reads its timeout. Nothing else
recomputes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.values import IntOrPercent, is_int_or_percent, is_zero, resolve_int_or_percent


@dataclass(frozen=True, kw_only=True)
class RolloutPlan:
    """How a Deployment rolls out; checked when built, so an impossible plan never reaches Kubernetes.

    ``max_surge`` and ``max_unavailable`` are a pod count, or a percentage of
    ``replicas`` as a string such as ``"25%"``. ``min_ready_seconds`` is how
    long a new pod must stay ready to count as available (seconds, >= 0);
    ``pod_ready_timeout_seconds`` is how long one may take to become ready:
    scheduled, pulled, started and passing its readiness probe (seconds, >= 1).
    Every time below is in seconds. No field has a default: the program fills
    the plan from stack config, whose defaults are Pulumi.yaml's.
    """

    replicas: int
    max_surge: IntOrPercent
    max_unavailable: IntOrPercent
    min_ready_seconds: int
    pod_ready_timeout_seconds: int

    def __post_init__(self) -> None:
        # Kubernetes would refuse each of these mid-update; refuse them before anything is sent.
        if self.replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {self.replicas}")
        if self.min_ready_seconds < 0:
            raise ValueError(f"min_ready_seconds must be >= 0, got {self.min_ready_seconds}")
        if self.pod_ready_timeout_seconds < 1:
            raise ValueError(f"pod_ready_timeout_seconds must be >= 1, got {self.pod_ready_timeout_seconds}")
        for name, bound in (("max_surge", self.max_surge), ("max_unavailable", self.max_unavailable)):
            if not is_int_or_percent(bound):
                raise ValueError(f"{name} must be an int >= 0 or a percentage from '0%' to '100%', got {bound!r}")
        if is_zero(self.max_surge) and is_zero(self.max_unavailable):
            raise ValueError(
                f"max_surge ({self.max_surge!r}) and max_unavailable ({self.max_unavailable!r}) "
                "must not both be zero, or a rollout could never start"
            )
        if self.progress_deadline_seconds <= self.min_ready_seconds:
            raise ValueError(
                f"progress_deadline_seconds ({self.progress_deadline_seconds}) must exceed "
                f"min_ready_seconds ({self.min_ready_seconds})"
            )

    @property
    def surge_pods(self) -> int:
        """maxSurge as a pod count: a percentage of replicas rounded up, as Kubernetes does."""
        return resolve_int_or_percent(self.max_surge, self.replicas, round_up=True)

    @property
    def unavailable_pods(self) -> int:
        """maxUnavailable as a pod count: a percentage of replicas rounded down, as Kubernetes does.

        When both bounds round to zero pods, Kubernetes lets one pod be unavailable
        (otherwise the rollout could not start), and so does this.
        """
        unavailable = resolve_int_or_percent(self.max_unavailable, self.replicas, round_up=False)
        if unavailable == 0 and self.surge_pods == 0:
            return 1
        return unavailable

    @property
    def batches(self) -> int:
        """How many batches a full rollout takes at least: ceil(replicas / (surge + unavailable pods)); 1 at least."""
        return max(1, math.ceil(self.replicas / (self.surge_pods + self.unavailable_pods)))

    @property
    def least_seconds(self) -> int:
        """The least time a full rollout can take: every batch stays ready minReadySeconds."""
        return self.batches * self.min_ready_seconds

    @property
    def least_serving(self) -> int:
        """The fewest available pods during a rollout: replicas minus maxUnavailable pods, 0 at least."""
        return max(0, self.replicas - self.unavailable_pods)

    @property
    def step_seconds(self) -> int:
        """Budget for one batch: a new pod becomes ready, then stays ready minReadySeconds."""
        return self.pod_ready_timeout_seconds + self.min_ready_seconds

    @property
    def progress_deadline_seconds(self) -> int:
        """The Deployment's progressDeadlineSeconds: two batch budgets without progress.

        Greater than minReadySeconds, as Kubernetes requires (checked when the plan is built).
        """
        return 2 * self.step_seconds

    @property
    def most_wait_seconds(self) -> int:
        """How long ``pulumi up`` waits for the rollout: every batch at its budget, plus one progress deadline.

        A stuck rollout is reported by Kubernetes (ProgressDeadlineExceeded) well
        before this, so this only bounds a slow but moving rollout.
        """
        return self.batches * self.step_seconds + self.progress_deadline_seconds

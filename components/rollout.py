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


#: ``rolloutStrategy`` values: every pod rolled, judged by readiness; or a canary judged by its traffic first.
ROLLING = "rolling"
CANARY = "canary"
STRATEGIES = (ROLLING, CANARY)


@dataclass(frozen=True, kw_only=True)
class CanaryPlan:
    """How a canary release is judged (``rolloutStrategy: canary``); checked when built.

    ``replicas`` canary pods (>= 1) run beside the stable ones and take
    ``replicas / (stable + replicas)`` of the Service's traffic, by pod count.
    For ``analysis_seconds`` (>= 10) their requests are compared with the
    stable pods': the canary fails when its error rate (4xx and 5xx answers,
    in percent) exceeds the stable's by more than ``max_error_rate``
    percentage points (0-100), or when its p99 latency exceeds
    ``max_p99_ms`` milliseconds (0: no bound). Fewer than ``min_requests``
    (>= 1) canary requests decide nothing. No field has a default: the
    program fills the plan from stack config, whose defaults are Pulumi.yaml's.
    """

    replicas: int
    analysis_seconds: int
    max_error_rate: float
    max_p99_ms: int
    min_requests: int

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {self.replicas}")
        if self.analysis_seconds < MIN_ANALYSIS_SECONDS:
            raise ValueError(f"analysis_seconds must be >= {MIN_ANALYSIS_SECONDS}, got {self.analysis_seconds}")
        if not 0 <= self.max_error_rate <= 100:
            raise ValueError(f"max_error_rate must be from 0 to 100, got {self.max_error_rate}")
        if self.max_p99_ms < 0:
            raise ValueError(f"max_p99_ms must be >= 0, got {self.max_p99_ms}")
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be >= 1, got {self.min_requests}")

    def share(self, stable_replicas: int) -> float:
        """The canary's share of the Service's traffic (0-1): its pods among all the Service selects."""
        return self.replicas / (stable_replicas + self.replicas)

    def most_added_seconds(self, rollout: RolloutPlan) -> int:
        """The most time a canary adds to a release: its pods' ready budget, then the whole analysis window."""
        return rollout.step_seconds + self.analysis_seconds


#: The shortest analysis window: a few polls of the pods' logs.
MIN_ANALYSIS_SECONDS = 10

"""Why a rollout fails, from the cluster's own objects: the one place that classifies pods, events and ReplicaSets.

``classify`` is a pure function over the API's JSON (as ``ops.cluster`` reads
it): the new ReplicaSet of a rollout, its pods, the namespace's events. It
returns a ``Diagnosis``: the causes found, grouped by cause, each with the
number of pods it applies to, one sample pod and Kubernetes' own message (for
a crash also the exit code, the termination reason and, filled in by
``diagnose``, the container's last ``LOG_LINES`` lines), and whether waiting
can still fix it (``terminal``).

Terminal (waiting will not fix it, so the update stops; see
docs/decisions/0011-fail-fast-on-terminal-rollout-states.md):

- ``ErrImageNeverPull``: the image is absent and the pull policy is ``Never``;
- ``InvalidImageName``: the image reference cannot be parsed;
- ``CreateContainerConfigError`` that persisted ``CONFIG_ERROR_SECONDS``
  (a ConfigMap or Secret created a moment later would fix it);
- ``FailedCreate`` of the ReplicaSet, refused for ``CREATE_REFUSED_SECONDS``:
  the API refuses its pods (quota, admission), which it keeps retrying in vain;
- ``CrashLoopBackOff`` once a container restarted ``CRASH_LOOP_RESTARTS``
  times: it ran twice and failed twice, and the kubelet now backs off.

Transient (the rollout waits until its progress deadline): an image still
pulling or in ``ErrImagePull``/``ImagePullBackOff`` (a registry may answer
later), ``RunContainerError`` (it turns into a crash loop if it lasts),
failing readiness or liveness probes, ``FailedScheduling`` (a node may be
added or freed).

The deadline is Kubernetes' own: the Deployment's ``progressDeadlineSeconds``.
Once its ``Progressing`` condition says ``ProgressDeadlineExceeded`` for the
rollout the update started (``deadline_exceeded``), Kubernetes has given up on
it, as ``kubectl rollout status`` does, and the update stops waiting too; the
waiting causes say why it made no progress.

Which pods: those of the rollout's new ReplicaSet, the one whose
``deployment.kubernetes.io/revision`` is above ``baseline_revision``, the
highest revision before the update started (a rollout to a new template makes
a new ReplicaSet with the next revision; a rollout back to an existing one
gives it the next revision). So pods of the version that runs now are never
blamed, and an update that does not roll out finds nothing. Events count only
from ``since`` on: a reused ReplicaSet keeps the events of its last rollout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

#: A container that restarted this many times and is in CrashLoopBackOff is terminal: it failed on each of its
#: runs, and the kubelet backs off (10 s, 20 s, 40 s...) before the next. One restart means two failed runs.
CRASH_LOOP_RESTARTS = 1
#: Seconds a CreateContainerConfigError must last to be terminal: a ConfigMap or Secret applied just after the
#: Deployment (the same update) would clear it within that time.
CONFIG_ERROR_SECONDS = 6
#: Seconds the API must have kept refusing a ReplicaSet's pods (FailedCreate) to be terminal: a quota exactly full
#: during pod churn refuses a pod only until a terminating one is gone.
CREATE_REFUSED_SECONDS = 4
#: Lines of a crashed container's log shown (its previous run, as it wrote them).
LOG_LINES = 20
#: Seconds between two reads of the cluster while an update waits for its rollout.
POLL_SECONDS = 2.0

#: The ReplicaSet annotation that numbers a Deployment's revisions.
REVISION = "deployment.kubernetes.io/revision"
#: The Deployment condition that says whether a rollout progresses, and its reason once Kubernetes gave up on it.
PROGRESSING = "Progressing"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"

# Causes, by Kubernetes' own reason.
NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE = "InvalidImageName"
PULL_ERROR = "ErrImagePull"
PULL_BACKOFF = "ImagePullBackOff"
CRASH_LOOP = "CrashLoopBackOff"
CONFIG_ERROR = "CreateContainerConfigError"
RUN_ERROR = "RunContainerError"
READINESS = "ReadinessProbeFailed"
LIVENESS = "LivenessProbeFailed"
UNSCHEDULABLE = "FailedScheduling"
CREATE_REFUSED = "FailedCreate"

#: Waiting reasons of a container that say why it does not run (others, like ContainerCreating, are progress).
WAITING_CAUSES = frozenset({NEVER_PULL, INVALID_IMAGE, PULL_ERROR, PULL_BACKOFF, CRASH_LOOP, CONFIG_ERROR, RUN_ERROR})
#: Terminal whatever their age.
ALWAYS_TERMINAL = frozenset({NEVER_PULL, INVALID_IMAGE})
#: The order causes are shown in, after terminal ones first: what stops a pod earliest comes first.
ORDER = (
    CREATE_REFUSED,
    UNSCHEDULABLE,
    INVALID_IMAGE,
    NEVER_PULL,
    PULL_ERROR,
    PULL_BACKOFF,
    CONFIG_ERROR,
    RUN_ERROR,
    CRASH_LOOP,
    READINESS,
    LIVENESS,
)


@dataclass(frozen=True, kw_only=True)
class Cause:
    """One cause of a failing rollout, over the pods it applies to.

    ``pods``: how many of the new ReplicaSet's pods show it (for ``FailedCreate``, the pods the ReplicaSet could not
    create). ``sample``: one of them, by name (empty for ``FailedCreate``). ``message``: Kubernetes' own words for
    the sample. For a crash: the container, its last run's ``exit_code`` and ``reason``, and ``log``, its last
    lines as it wrote them (empty when they could not be read).
    """

    name: str
    pods: int
    sample: str
    message: str
    terminal: bool
    container: str = ""
    exit_code: int | None = None
    reason: str = ""
    log: tuple[str, ...] = ()

    def headline(self) -> str:
        """One line: the cause, its pods (and exit code), then the sample's message; for a crash whose log was
        read, its last line instead, which says why where the kubelet's back-off message does not."""
        count = f"{self.pods} pod{'s' if self.pods != 1 else ''}"
        exit_code = f", exit code {self.exit_code} ({self.reason})" if self.exit_code is not None else ""
        written = [line for line in self.log if line.strip()]
        message = " ".join((f"last log line: {written[-1]}" if written else self.message).split())
        return f"{self.name} ({count}{exit_code}): {message}" if message else f"{self.name} ({count}{exit_code})"

    def as_json(self) -> dict[str, object]:
        return {
            "cause": self.name,
            "pods": self.pods,
            "samplePod": self.sample,
            "message": self.message,
            "terminal": self.terminal,
            "container": self.container,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "log": list(self.log),
        }


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """What the new ReplicaSet's pods show, grouped by cause, terminal causes first.

    ``replica_set`` is the new ReplicaSet's name (empty when the rollout has not made or chosen one yet).
    ``refused`` names each read the cluster refused, as the RBAC rule it needs (``list pods``, ``get pods/log``):
    what is missing from the diagnosis. ``deadline``: Kubernetes' message once it gave up on the rollout
    (``ProgressDeadlineExceeded``), else empty.
    """

    replica_set: str = ""
    causes: tuple[Cause, ...] = ()
    refused: tuple[str, ...] = ()
    deadline: str = ""

    @property
    def terminal(self) -> bool:
        """Whether waiting cannot fix it: one cause at least is terminal."""
        return any(cause.terminal for cause in self.causes)

    @property
    def over(self) -> bool:
        """Whether the update should stop waiting: a terminal cause, or Kubernetes gave up (its progress deadline)."""
        return self.terminal or bool(self.deadline)

    @property
    def gave_up(self) -> bool:
        """Whether Kubernetes' progress deadline, not a terminal cause, is why the wait is over."""
        return bool(self.deadline) and not self.terminal

    def headline(self) -> str:
        """The first cause's headline (a terminal one if any), or empty when no cause was found."""
        return self.causes[0].headline() if self.causes else ""

    def lines(self) -> list[str]:
        """The diagnosis as ``make up`` prints it: each cause, then its log lines, indented; what was refused."""
        out: list[str] = []
        for cause in self.causes:
            kind = "terminal" if cause.terminal else "waiting"
            out.append(f"  - {cause.headline()} [{kind}]")
            if cause.sample:
                container = f", container {cause.container}" if cause.container else ""
                out.append(f"    sample pod: {cause.sample}{container}")
            if cause.log:
                out.append(f"    its last {len(cause.log)} log lines (as the container wrote them):")
                out.extend(f"    | {line}" for line in cause.log)
        out.extend(
            f"  - not read: the cluster refused `{permission}`; the namespace Role needs it (README, "
            '"Diagnostics: permissions")'
            for permission in self.refused
        )
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "replicaSet": self.replica_set,
            "terminal": self.terminal,
            "progressDeadlineExceeded": self.deadline,
            "causes": [cause.as_json() for cause in self.causes],
            "refused": list(self.refused),
        }


# ---------------------------------------------------------------------------
# Reading the API's JSON


def timestamp(text: object) -> datetime | None:
    """An API timestamp (``2026-11-30T14:20:37Z``), or None."""
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def revision(replica_set: Mapping[str, Any]) -> int:
    """The ReplicaSet's Deployment revision (0 when it has none)."""
    value = ((replica_set.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def newest_revision(replica_sets: Iterable[Mapping[str, Any]]) -> int:
    """The highest revision among ``replica_sets`` (0 for none): the baseline before an update."""
    return max((revision(rs) for rs in replica_sets), default=0)


def new_replica_set(replica_sets: Iterable[Mapping[str, Any]], baseline_revision: int) -> Mapping[str, Any] | None:
    """The ReplicaSet of the rollout that started after ``baseline_revision``: the highest revision above it."""
    newer = [rs for rs in replica_sets if revision(rs) > baseline_revision]
    return max(newer, key=revision) if newer else None


def generation(deployment: Mapping[str, Any] | None) -> int:
    """A Deployment's ``metadata.generation`` (0 for none): the baseline before an update."""
    return int(((deployment or {}).get("metadata") or {}).get("generation") or 0)


def progressing(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A Deployment ``status``'s ``Progressing`` condition, when it has a reason: Kubernetes' verdict on the
    rollout (``ReplicaSetUpdated``, ``NewReplicaSetAvailable``, ``ProgressDeadlineExceeded``); else None."""
    conditions = (status or {}).get("conditions") or []
    return next(
        (c for c in conditions if isinstance(c, Mapping) and c.get("type") == PROGRESSING and c.get("reason")), None
    )


def deadline_exceeded(deployment: Mapping[str, Any] | None, baseline_generation: int) -> str | None:
    """Kubernetes' message when it gave up on the rollout that started after ``baseline_generation``, else None.

    That is: the Deployment changed since (its ``generation`` is above the baseline), the controller has seen the
    change (``observedGeneration``), and its ``Progressing`` condition's reason is ``ProgressDeadlineExceeded``.
    A condition left by an earlier rollout, or not yet updated for this one, does not count.
    """
    if deployment is None:
        return None
    current = generation(deployment)
    status = deployment.get("status") or {}
    if current <= baseline_generation or int(status.get("observedGeneration") or 0) < current:
        return None
    verdict = progressing(status)
    if verdict is None or verdict.get("reason") != PROGRESS_DEADLINE:
        return None
    return str(verdict.get("message") or "")


def _owned_by(pod: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in (pod.get("metadata") or {}).get("ownerReferences") or [])


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    """When an event was last seen: core/v1 ``lastTimestamp``, else its series' or its own ``eventTime``."""
    series = event.get("series") or {}
    return (
        timestamp(event.get("lastTimestamp"))
        or timestamp(series.get("lastObservedTime"))
        or timestamp(event.get("eventTime"))
        or timestamp((event.get("metadata") or {}).get("creationTimestamp"))
    )


def _first_time(event: Mapping[str, Any]) -> datetime | None:
    return timestamp(event.get("firstTimestamp")) or timestamp(event.get("eventTime")) or _event_time(event)


@dataclass
class _Seen:
    """The pods that showed one cause, and the first one's details."""

    pods: list[str] = field(default_factory=list)
    sample: Cause | None = None
    terminal: bool = False


def classify(
    *,
    replica_sets: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    baseline_revision: int,
    since: datetime,
    now: datetime,
) -> Diagnosis:
    """The causes that keep the rollout after ``baseline_revision`` from completing, as of ``now``.

    ``replica_sets`` and ``pods`` are the Deployment's (its selector's), ``events`` the namespace's; only events
    last seen at ``since`` or later count. Pure: the same objects give the same diagnosis.
    """
    new = new_replica_set(replica_sets, baseline_revision)
    if new is None:
        return Diagnosis()
    meta = new.get("metadata") or {}
    name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
    own = sorted((p for p in pods if _owned_by(p, uid)), key=lambda p: str(p["metadata"]["name"]))
    recent = [e for e in events if (_event_time(e) or since) >= since]
    seen: dict[str, _Seen] = {}

    def found(cause: Cause) -> None:
        entry = seen.setdefault(cause.name, _Seen())
        if cause.sample not in entry.pods:
            entry.pods.append(cause.sample)
        if entry.sample is None:
            entry.sample = cause
        entry.terminal = entry.terminal or cause.terminal

    for pod in own:
        for cause in _pod_causes(pod, recent, now):
            found(cause)
    refused = [
        e
        for e in recent
        if (e.get("involvedObject") or {}).get("kind") == "ReplicaSet"
        and (e.get("involvedObject") or {}).get("name") == name
        and e.get("reason") == CREATE_REFUSED
    ]
    causes = [
        replace(entry.sample, pods=len(entry.pods), terminal=entry.terminal)
        for entry in seen.values()
        if entry.sample is not None
    ]
    if refused:
        latest = max(refused, key=lambda e: _event_time(e) or since)
        first = min((t for t in (_first_time(e) for e in refused) if t is not None), default=now)
        first = max(first, since)
        wanted = int((new.get("spec") or {}).get("replicas") or 0)
        missing = wanted - int((new.get("status") or {}).get("replicas") or 0)
        causes.append(
            Cause(
                name=CREATE_REFUSED,
                pods=max(missing, 1),
                sample="",
                message=str(latest.get("message", "")),
                terminal=(now - first).total_seconds() >= CREATE_REFUSED_SECONDS,
            )
        )
    causes.sort(key=lambda c: (not c.terminal, ORDER.index(c.name) if c.name in ORDER else len(ORDER)))
    return Diagnosis(replica_set=name, causes=tuple(causes))


def _pod_causes(pod: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: datetime) -> list[Cause]:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = str(meta.get("name", ""))
    on_pod = [e for e in events if (e.get("involvedObject") or {}).get("name") == name]
    causes: list[Cause] = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = str(condition.get("message") or "")
            causes.append(Cause(name=UNSCHEDULABLE, pods=1, sample=name, message=message, terminal=False))
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason not in WAITING_CAUSES:
            continue
        message = str(waiting.get("message") or "")
        causes.append(_waiting_cause(name, container, reason=reason, message=message, on_pod=on_pod, now=now))
    not_ready = [c for c in statuses if (c.get("state") or {}).get("running") and not c.get("ready")]
    for event in on_pod:
        message = str(event.get("message") or "")
        if event.get("reason") != "Unhealthy":
            continue
        if message.startswith("Readiness probe") and not_ready:
            causes.append(Cause(name=READINESS, pods=1, sample=name, message=message, terminal=False))
        elif message.startswith("Liveness probe"):
            causes.append(Cause(name=LIVENESS, pods=1, sample=name, message=message, terminal=False))
    return causes


def _waiting_cause(
    pod: str,
    container: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    on_pod: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Cause:
    cause = Cause(
        name=reason,
        pods=1,
        sample=pod,
        message=message,
        terminal=reason in ALWAYS_TERMINAL,
        container=str(container.get("name", "")),
    )
    if reason == CRASH_LOOP:
        last = (container.get("lastState") or {}).get("terminated") or {}
        exit_code = last.get("exitCode")
        return replace(
            cause,
            terminal=int(container.get("restartCount") or 0) >= CRASH_LOOP_RESTARTS,
            exit_code=int(exit_code) if exit_code is not None else None,
            reason=str(last.get("reason") or ""),
            # The termination's own message (runc's, for a command that cannot run) says more than the back-off's.
            message=str(last.get("message") or message),
        )
    if reason == CONFIG_ERROR:
        failed = [t for t in (_first_time(e) for e in on_pod if e.get("reason") == "Failed") if t is not None]
        first = min(failed) if failed else timestamp((container.get("state") or {}).get("startedAt"))
        lasted = (now - first).total_seconds() if first is not None else 0.0
        return replace(cause, terminal=lasted >= CONFIG_ERROR_SECONDS)
    return cause


# ---------------------------------------------------------------------------
# Reading the cluster


class Reads(Protocol):
    """The reads a diagnosis makes: ``ops.cluster.Cluster``'s (tests pass recorded objects)."""

    def replica_sets(self, selector: str) -> list[dict[str, Any]]: ...

    def deployment(self, name: str) -> dict[str, Any] | None: ...

    def pods(self, selector: str) -> list[dict[str, Any]]: ...

    def events(self, field_selector: str | None = None) -> list[dict[str, Any]]: ...

    def log(self, pod: str, *, container: str | None = None, tail_lines: int = 20, previous: bool = False) -> str: ...

    def close(self) -> None: ...


def selector(labels: Mapping[str, str]) -> str:
    """A label selector (``key=value,...``) from labels."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def baseline(cluster: Reads, label_selector: str) -> int:
    """The newest revision of the Deployment's ReplicaSets now, before the update; raises ``Refused``."""
    return newest_revision(cluster.replica_sets(label_selector))


def diagnose(
    cluster: Reads,
    label_selector: str,
    *,
    baseline_revision: int,
    since: datetime,
    now: datetime | None = None,
    logs: bool = True,
) -> Diagnosis:
    """Read the ReplicaSets, pods and events, ``classify`` them, and add each crash's last log lines (``logs``).

    A read the cluster refuses is named in ``Diagnosis.refused`` and the rest goes on without it: without the
    ReplicaSets nothing can be told. Other errors (an unreachable API server) propagate.
    """
    from ops.cluster import Refused  # noqa: PLC0415  # ops.cluster imports the client lazily; so does this

    refused: list[str] = []

    def read(call: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            return call()
        except Refused as error:
            refused.append(error.permission)
            return []

    replica_sets = read(lambda: cluster.replica_sets(label_selector))
    if refused:
        return Diagnosis(refused=tuple(refused))
    pods = read(lambda: cluster.pods(label_selector))
    events = read(cluster.events)
    found = classify(
        replica_sets=replica_sets,
        pods=pods,
        events=events,
        baseline_revision=baseline_revision,
        since=since,
        now=now or datetime.now(UTC),
    )
    causes = list(found.causes)
    for index, cause in enumerate(causes):
        if logs and cause.name == CRASH_LOOP and cause.sample:
            try:
                text = cluster.log(cause.sample, container=cause.container or None, tail_lines=LOG_LINES, previous=True)
            except Refused as error:
                refused.append(error.permission)
                continue
            causes[index] = replace(cause, log=tuple(text.splitlines()[-LOG_LINES:]))
    return replace(found, causes=tuple(causes), refused=tuple(dict.fromkeys(refused)))


class Watcher:
    """Polls a Deployment's new pods while an update waits for its rollout, and calls ``on_over`` once.

    ``start`` takes the baseline revision and generation (before the update changes the Deployment); then every
    ``interval`` seconds (``POLL_SECONDS``) it diagnoses, until ``stop``, the first diagnosis that is ``over`` (a
    terminal cause, or Kubernetes' progress deadline passed), or ``max_seconds``. It never raises into the update: a
    failed read is kept in ``problem`` and the next poll tries again. It needs the Deployment's label selector, and
    its name (``deployment``) to read the progress deadline's verdict: without a name, or when ``get deployments``
    is refused, only terminal causes end the wait.
    """

    def __init__(
        self,
        connect: Callable[[], Reads],
        label_selector: str,
        *,
        on_over: Callable[[Diagnosis], None],
        deployment: str = "",
        interval: float = POLL_SECONDS,
        max_seconds: float = 3600.0,
    ) -> None:
        self._connect = connect
        self._selector = label_selector
        self._deployment = deployment
        self._on_over = on_over
        self._interval = interval
        self._max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cluster: Reads | None = None
        self.baseline_revision = 0
        self.baseline_generation = 0
        self.since = datetime.now(UTC)
        self.latest = Diagnosis()
        #: The diagnosis that ended the wait (``Diagnosis.over``), or None.
        self.ended: Diagnosis | None = None
        self.problem = ""
        self.refused: tuple[str, ...] = ()

    def start(self) -> None:
        """Start watching in the background: connect, read the baseline, then poll.

        The update's refresh runs first, for seconds, so the baseline is read before the Deployment changes; the
        client's import and the connection cost the update nothing.
        """
        self.since = datetime.now(UTC).replace(microsecond=0)
        self._thread = threading.Thread(target=self._run, name="rollout-watcher", daemon=True)
        self._thread.start()

    def _begin(self) -> bool:
        from ops.cluster import Refused  # noqa: PLC0415

        try:
            self._cluster = self._connect()
            self.baseline_revision = baseline(self._cluster, self._selector)
        except Refused as error:
            self.refused = (error.permission,)
            return False
        except Exception as error:  # a watcher must never stop the update it watches
            self.problem = f"{type(error).__name__}: {error}"
            return False
        if self._deployment:
            try:
                self.baseline_generation = generation(self._cluster.deployment(self._deployment))
            except Refused as error:
                # The causes can still be read: only the deadline's verdict is left to Pulumi's own timeout.
                self.refused = (error.permission,)
                self._deployment = ""
            except Exception as error:
                self.problem = f"{type(error).__name__}: {error}"
                self._deployment = ""
        return True

    def _run(self) -> None:
        if not self._begin():
            return
        assert self._cluster is not None
        deadline = time.monotonic() + self._max_seconds
        while not self._stop.wait(self._interval) and time.monotonic() < deadline:
            try:
                found = self._diagnose(self._cluster)
            except Exception as error:  # an unreachable API server for one poll: try the next
                self.problem = f"{type(error).__name__}: {error}"
                continue
            self.latest = found
            if found.over:
                self.ended = found
                self._on_over(found)
                return

    def _diagnose(self, cluster: Reads) -> Diagnosis:
        found = diagnose(cluster, self._selector, baseline_revision=self.baseline_revision, since=self.since)
        if self.refused:
            found = replace(found, refused=tuple(dict.fromkeys((*self.refused, *found.refused))))
        if not self._deployment:
            return found
        message = deadline_exceeded(cluster.deployment(self._deployment), self.baseline_generation)
        return found if message is None else replace(found, deadline=message)

    def stop(self) -> Diagnosis:
        """Stop polling; the final diagnosis: the one that ended the wait, else a fresh read (the latest if that
        fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.ended is not None:
            return self.ended
        if self._cluster is None:
            return Diagnosis(refused=self.refused)
        try:
            return self._diagnose(self._cluster)
        except Exception as error:
            self.problem = f"{type(error).__name__}: {error}"
            return self.latest

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()

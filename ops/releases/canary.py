"""A canary release (``rolloutStrategy: canary``): decided by the requests the canary serves, with nothing installed.

``make up`` on such a stack releases a new tag in recorded stages, each a Pulumi
update whose message names it:

1. **Stage 1**: ``canaryImageTag`` is set to the new tag (as the user gave it:
   ``app/VERSION`` or a tag) and ``imageTag`` to the stable tag, so the program
   adds a canary Deployment beside the untouched stable one. Its pods carry the
   Service's selector labels and take their share of real traffic by pod count.
2. **Analysis** (no update): the canary's pods must get ready and stay up; then,
   for ``canaryAnalysisSeconds``, their access logs and the stable pods' are read
   through the Kubernetes logs API and compared (``ops.releases.analysis``). When
   real traffic brings fewer than ``canaryMinRequests`` canary requests by half
   the window, bounded probes (``GET /``) go to the canary pods only, through the
   API server's pod proxy.
3. **Stage 2, promote**: ``imageTag`` back to the new tag, ``canaryImageTag``
   emptied: the stable Deployment rolls with today's rolling update and the
   update waits for it; the canary Deployment is deleted after that (Pulumi
   deletes what the program no longer declares once every other step is done).
   A failed rollout is rolled back as ``make up`` rolls back.
   **Or abort**: ``canaryImageTag`` emptied and ``imageTag`` left at the stable
   (last good) tag: the canary is deleted. The stage 1 release is then recorded
   as failed, with the figures that decided it (``make history``).

An interrupted release (Ctrl-C, SIGTERM, a killed process, a lost runner) leaves
``canaryImageTag`` set: a plain ``pulumi up`` keeps the canary as it is, and the
next ``make up`` finishes the release: it applies stage 1 again (a no-op when it
is in place) and runs a whole new analysis window before it promotes or aborts.
Nothing is promoted without a complete window.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from components.labels import canary_pods_selector, stable_pods_selector
from components.settings import APP_VERSION_TAG, Settings
from components.webapp import CANARY_DEPLOYMENT_NAME, CONTAINER_PORT, TERMINATION_GRACE_SECONDS
from ops import diagnosis, engine
from ops.releases.analysis import ABORT, CONTINUE, PROMOTE, Sample, Verdict, decide, parse_log
from ops.releases.command import (
    Deployer,
    UpOutcome,
    UpResult,
    print_up,
    up,
    validated,
)
from ops.releases.model import (
    IMAGE_TAG_KEY,
    AppVersionAt,
    canary_aborted,
    canary_promoted,
    canary_stage1,
    release_message,
    releases,
    running_release,
)
from project import config_key

#: The config key make up sets while a canary runs (short form, for set_config).
CANARY_TAG = "canaryImageTag"
#: Seconds between two reads of the pods' logs during the analysis (shorter for a short window).
POLL_SECONDS = 5.0
#: Probes per second at most, and the path they ask for (what users ask for).
PROBE_RATE = 10.0
PROBE_PATH = "/"


class Pods(diagnosis.Reads, Protocol):
    """The cluster reads a canary release needs (``ops.cluster.Cluster``), a diagnosis's among them; tests pass a
    fake."""

    def log(
        self,
        pod: str,
        *,
        container: str | None = ...,
        tail_lines: int | None = ...,
        previous: bool = ...,
        since_seconds: int | None = ...,
        timestamps: bool = ...,
    ) -> str: ...

    def proxy_get(self, pod: str, port: int, path: str) -> int: ...

    def scale(self, deployment: str, replicas: int) -> None: ...


class CanaryStack(Deployer, Protocol):
    """A ``Deployer`` that can also preview with other config, writing nothing (``PulumiStack``)."""

    def preview_with(self, config: Mapping[str, str]) -> engine.Report: ...


#: Opens the cluster of a stack: (its config, the namespace) -> reads. ``ops.cluster`` in the command.
Connect = Callable[[Mapping[str, str], str], contextlib.AbstractContextManager[Pods]]


def connect(config: Mapping[str, str], namespace: str) -> contextlib.AbstractContextManager[Pods]:
    """The stack's cluster as its Kubernetes provider reaches it (``ops.cluster``)."""
    from ops.cluster import Cluster, Target  # noqa: PLC0415  # the client is slow to import; only a canary needs it

    return Cluster.connect(Target.of_stack(config, namespace))


def pod_problem(pod: Mapping[str, Any]) -> str | None:
    """Why a canary pod will not serve, or None: a container waiting for a reason ``ops.diagnosis`` names as a
    cause (``WAITING_CAUSES``), or one that restarted or crashed.

    Stricter than a rolling release, on purpose: the canary is the release's test, so a cause that a rollout would
    wait out (an image still in back-off) and a single restart both end it at once.
    """
    name = pod.get("metadata", {}).get("name", "?")
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in diagnosis.WAITING_CAUSES:
            return f"canary pod {name}: {waiting['reason']}: {waiting.get('message', '').strip()}".rstrip(": ")
        terminated = (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")
        if status.get("restartCount", 0) > 0 or terminated:
            reason = (terminated or {}).get("reason", "restarted")
            code = (terminated or {}).get("exitCode")
            return f"canary pod {name} crashed: {reason}" + (f" (exit code {code})" if code is not None else "")
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods not being deleted."""
    return [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]


@dataclass(frozen=True)
class CanaryResult:
    """What a canary release did.

    ``outcome``: ``promoted``, ``aborted``, ``interrupted``, ``declined``, or ``promotion failed`` (the canary
    passed, the stable pods' rollout failed: ``final`` says how ``make up`` rolled back). ``reason`` says why,
    with the figures. ``release`` is the number of stage 1's release. ``stage1`` is stage 1's update (None when
    declined); ``final`` the promotion's ``make up`` (with its own automatic rollback), ``abort`` the abort's
    update.
    """

    settings: Settings
    new_tag: str
    stable_tag: str
    outcome: str
    reason: str = ""
    stage1: UpOutcome | None = None
    final: UpResult | None = None
    abort: UpOutcome | None = None
    release: int = 0


class _Interrupted(Exception):
    """SIGTERM during the analysis: handled as Ctrl-C is."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _share(settings: Settings) -> str:
    canary = settings.canary
    total = settings.rollout.replicas + canary.replicas
    return f"{canary.replicas} of {total} pods, {canary.share(settings.rollout.replicas):.0%} of traffic"


def say(line: str) -> None:
    """Print a line of progress at once, also to a pipe (a CI log): the analysis takes a while between lines."""
    print(line, flush=True)


def plan(settings: Settings, stable_tag: str, new_tag: str) -> str:
    """The canary release as it will run, for the confirmation and the log."""
    canary = settings.canary
    bound = f", p99 at most {canary.max_p99_ms} ms" if canary.max_p99_ms else ""
    return (
        f"Canary release of {settings.image_repository}:{new_tag} beside {stable_tag} on stack {settings.stack}: "
        f"{_share(settings)}; analysis {canary.analysis_seconds} s, errors at most {canary.max_error_rate:g} points "
        f"above the stable pods'{bound}, at least {canary.min_requests} requests; "
        f"adds at most {canary.most_added_seconds(settings.rollout)} s."
    )


def release(
    deployer: CanaryStack,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    confirm: Callable[[], bool] | None,
    connect: Connect,
    announce: Callable[[str], None] = say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CanaryResult | None:
    """The canary release of the stack's ``imageTag``, or None when there is nothing to canary against.

    None (the caller runs a rolling ``make up``): no release of the stack runs yet (or the newest failed), its tag
    is unknown, it is the tag asked for already, or a digest is pinned (``make promote`` releases those).
    """
    settings = validated(deployer, app_version)
    config = deployer.config()
    found = deployer.history()
    numbered = releases(found, app_version_at)
    if settings.canary_image_tag is not None:
        # An interrupted canary release: finish it, with a whole new analysis window.
        intent = config.get(config_key(CANARY_TAG), APP_VERSION_TAG)
        stable_tag, new_tag = settings.image_tag, settings.canary_image_tag
        announce(
            f"A canary of {new_tag} beside {stable_tag} was left by an interrupted make up: "
            "finishing it with a new analysis window."
        )
    else:
        running = running_release(found, numbered)
        if settings.image_digest or running is None or running.image_tag in (None, settings.image_tag):
            return None
        intent = config.get(IMAGE_TAG_KEY, APP_VERSION_TAG)
        stable_tag, new_tag = str(running.image_tag), settings.image_tag

    canary_settings = validated(deployer, app_version, imageTag=stable_tag, canaryImageTag=intent)
    announce(plan(canary_settings, stable_tag, new_tag))
    if confirm is not None:
        deployer.preview_with({"imageTag": stable_tag, CANARY_TAG: intent})
        if not confirm():
            return CanaryResult(settings, new_tag, stable_tag, "declined")

    repository = settings.image_repository
    deployer.set_image_tag(stable_tag)
    deployer.set_config(CANARY_TAG, intent)
    stage1_message = release_message(
        canary_stage1(f"{_share(canary_settings)} beside {stable_tag}"), repository, new_tag, deployer.name
    )
    announce(f"\nStage 1: the canary of {new_tag} ({_share(canary_settings)}).\n")
    stage1 = deployer.up(stage1_message)
    number = len(numbered) + 1
    if not stage1.succeeded:
        return _abort(
            deployer,
            settings=canary_settings,
            new_tag=new_tag,
            stable_tag=stable_tag,
            reason="stage 1 failed: see the output above",
            stage1=stage1,
            number=number,
            announce=announce,
            stop=lambda: _stop(connect, config, canary_settings, announce),
            gone=lambda: _wait_gone(connect, config, canary_settings, clock, sleep),
        )

    try:
        with _sigterm_interrupts(), connect(config, settings.namespace) as cluster:
            verdict = _analyse(cluster, canary_settings, new_tag=new_tag, announce=announce, clock=clock, sleep=sleep)
    except (KeyboardInterrupt, _Interrupted):
        return CanaryResult(
            canary_settings,
            new_tag,
            stable_tag,
            "interrupted",
            "interrupted during the analysis",
            stage1,
            release=number,
        )

    if verdict.action != PROMOTE:
        return _abort(
            deployer,
            settings=canary_settings,
            new_tag=new_tag,
            stable_tag=stable_tag,
            reason=verdict.reason,
            stage1=stage1,
            number=number,
            announce=announce,
            stop=lambda: _stop(connect, config, canary_settings, announce),
            gone=lambda: _wait_gone(connect, config, canary_settings, clock, sleep),
        )

    announce(f"\nCanary of {new_tag} passed: {verdict.reason}\nStage 2: rolling the stable pods to {new_tag}.\n")
    deployer.set_image_tag(intent)
    deployer.set_config(CANARY_TAG, "")
    final = up(
        deployer,
        app_version=app_version,
        app_version_at=app_version_at,
        confirm=None,
        message=release_message(canary_promoted(verdict.reason), repository, new_tag, deployer.name),
        announce=announce,
    )
    outcome = "promoted" if final.outcome is not None and final.outcome.succeeded else "promotion failed"
    if outcome == "promoted":
        _wait_gone(connect, config, canary_settings, clock, sleep)
    return CanaryResult(canary_settings, new_tag, stable_tag, outcome, verdict.reason, stage1, final, release=number)


def _abort(
    deployer: CanaryStack,
    *,
    settings: Settings,
    new_tag: str,
    stable_tag: str,
    reason: str,
    stage1: UpOutcome,
    number: int,
    announce: Callable[[str], None],
    stop: Callable[[], None] | None,
    gone: Callable[[], None] | None,
) -> CanaryResult:
    """Delete the canary and leave ``imageTag`` at the stable (last good) tag; the reason goes in the message.

    ``stop`` scales the canary to zero first, through the API: its pods leave the Service's endpoints at once,
    instead of at the end of the update (Pulumi deletes what the program no longer declares last, after the
    other steps, such as the Service's own await, which waits while a selected pod is not ready). ``gone`` then
    waits until no canary pod is left: a stopping pod drains (preStop) and answers what it is still routed, so
    ``make up`` returns only once a broken canary can answer nobody.
    """
    announce(f"\nCanary of {new_tag} aborted: {reason}\nRemoving the canary; the stable pods keep {stable_tag}.\n")
    if stop is not None:
        stop()
    deployer.set_image_tag(stable_tag)
    deployer.set_config(CANARY_TAG, "")
    message = release_message(canary_aborted(new_tag, reason), settings.image_repository, stable_tag, deployer.name)
    aborted = deployer.up(message, whole_stack=True)
    if aborted.succeeded and gone is not None:
        gone()
    return CanaryResult(settings, new_tag, stable_tag, "aborted", reason, stage1, abort=aborted, release=number)


def _stop(connect: Connect, config: Mapping[str, str], settings: Settings, announce: Callable[[str], None]) -> None:
    """Scale the canary Deployment to zero; the update that follows deletes it either way."""
    try:
        with connect(config, settings.namespace) as cluster:
            cluster.scale(CANARY_DEPLOYMENT_NAME, 0)
    except Exception as error:  # the update removes the canary anyway; say why it was not sooner
        announce(f"  could not scale the canary to zero first ({error}); the update removes it")


def _wait_gone(
    connect: Connect,
    config: Mapping[str, str],
    settings: Settings,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Wait until the canary's pods are gone (drained and stopped), at most their grace period and 10 s."""
    deadline = clock() + TERMINATION_GRACE_SECONDS + 10
    with connect(config, settings.namespace) as cluster:
        while cluster.pods(canary_pods_selector(settings.namespace)) and clock() < deadline:
            sleep(0.5)


def _analyse(
    cluster: Pods,
    settings: Settings,
    *,
    new_tag: str,
    announce: Callable[[str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Verdict:
    """The verdict; a canary that cannot be judged (the cluster refuses a read, is unreachable) is aborted."""
    try:
        return _judge(cluster, settings, new_tag=new_tag, announce=announce, clock=clock, sleep=sleep)
    except (KeyboardInterrupt, _Interrupted):
        raise
    except Exception as error:  # never promote what could not be judged; say why
        return Verdict(ABORT, f"the analysis could not read the cluster: {error}")


def _judge(
    cluster: Pods,
    settings: Settings,
    *,
    new_tag: str,
    announce: Callable[[str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Verdict:
    """Wait for the canary pods, then compare what they serve with the stable pods' until a verdict."""
    canary_selector = canary_pods_selector(settings.namespace)
    stable_selector = stable_pods_selector(settings.namespace)
    plan = settings.canary
    ready_by = clock() + settings.rollout.step_seconds
    stage1_at = datetime.now(UTC) - timedelta(seconds=settings.rollout.step_seconds)
    while True:
        pods = live(cluster.pods(canary_selector))
        problems = [p for p in map(pod_problem, pods) if p]
        if problems:
            return Verdict(ABORT, problems[0] + _diagnosed(cluster, canary_selector, stage1_at, announce))
        if len(pods) == plan.replicas and all(map(is_ready, pods)):
            break
        if clock() >= ready_by:
            ready = sum(map(is_ready, pods))
            why = _diagnosed(cluster, canary_selector, stage1_at, announce)
            return Verdict(
                ABORT,
                f"{ready} of {plan.replicas} canary pods ready within {settings.rollout.step_seconds} s "
                f"(podReadyTimeoutSeconds + minReadySeconds){why}",
            )
        sleep(1.0)

    window = plan.analysis_seconds
    poll = min(POLL_SECONDS, window / 4)
    started = clock()
    since = datetime.now(UTC) - timedelta(seconds=0.5)
    probes = 0
    announce(f"Analysis: {window} s; canary pods {', '.join(p['metadata']['name'] for p in pods)}.")
    while True:
        sleep(poll)
        elapsed = clock() - started
        over = elapsed >= window
        canary_pods = live(cluster.pods(canary_selector))
        problems = [p for p in map(pod_problem, canary_pods) if p]
        if problems:
            return Verdict(ABORT, problems[0] + _diagnosed(cluster, canary_selector, stage1_at, announce))
        reach = math.ceil(elapsed) + 2
        canary = Sample.of(s for pod in canary_pods for s in _served(cluster, pod, reach, since))
        stable = Sample.of(
            s for pod in live(cluster.pods(stable_selector)) for s in _served(cluster, pod, reach, since)
        )
        if not over and elapsed >= window / 2 and canary.requests < plan.min_requests and probes < plan.min_requests:
            # Real traffic is too thin to decide on: ask the canary pods ourselves, bounded in count and rate.
            count = min(plan.min_requests - canary.requests, plan.min_requests - probes)
            announce(
                f"  {canary.requests} canary requests by {elapsed:.0f} s: sending {count} probes to the canary pods"
            )
            probes += _probe(cluster, canary_pods, count, sleep)
        verdict = decide(canary, stable, plan, window_over=over)
        left = max(0, window - elapsed)
        announce(
            f"  {new_tag} canary ({_share(settings)}) {elapsed:.0f} s: canary {canary.describe()}"
            + (f" ({probes} probes)" if probes else "")
            + f"; stable {stable.describe()}; {left:.0f} s left"
        )
        if verdict.action != CONTINUE:
            return verdict


def _diagnosed(cluster: Pods, selector: str, since: datetime, announce: Callable[[str], None]) -> str:
    """Why the canary's pods fail, as ``make up`` says it of a rolling release (``ops.diagnosis``): printed in
    full (causes, sample pod, Kubernetes' message, a crash's last log lines); its headline, ``; ``-prefixed, for the
    verdict and the release's message (empty when it found none)."""
    try:
        # The canary Deployment is new with each canary: every one of its ReplicaSets is the rollout's.
        found = diagnosis.diagnose(cluster, selector, baseline_revision=0, since=since)
    except Exception as error:  # the pod's own state stands alone; say why there is no more
        announce(f"  no diagnosis of the canary's pods: {error}")
        return ""
    if found.causes or found.refused:
        announce("\n".join(["Why the canary's pods fail:", *found.lines()]))
    return f"; {found.headline()}" if found.causes else ""


def _served(cluster: Pods, pod: Mapping[str, Any], reach: int, since: datetime) -> list[Any]:
    text = cluster.log(pod["metadata"]["name"], tail_lines=None, since_seconds=reach, timestamps=True)
    return parse_log(text, since)


def _probe(cluster: Pods, pods: list[dict[str, Any]], count: int, sleep: Callable[[float], None]) -> int:
    """``count`` GETs spread over ``pods``, at most PROBE_RATE a second; how many were sent."""
    sent = 0
    for index in range(count):
        pod = pods[index % len(pods)]["metadata"]["name"]
        # What the pod answered is in its access log, where the analysis reads it; a probe the API server
        # refuses (no ``get pods/proxy``) never reaches it, and the analysis ends short of requests.
        cluster.proxy_get(pod, CONTAINER_PORT, PROBE_PATH)
        sent += 1
        sleep(1 / PROBE_RATE)
    return sent


def print_canary(result: CanaryResult) -> int:
    """Print the decision and what runs now; the exit status (0 promoted, 1 aborted or failed, 130 interrupted)."""
    if result.outcome == "declined":
        print("update declined: nothing was changed", file=sys.stderr)
        return 1
    if result.outcome == "interrupted":
        print(
            f"interrupted: the canary of {result.new_tag} still runs beside {result.stable_tag} "
            f"(canaryImageTag = {result.new_tag}); nothing was promoted.\n"
            "The next `make up` finishes the release with a new analysis window; to drop the canary instead: "
            "`pulumi config rm canaryImageTag && make up`.",
            file=sys.stderr,
        )
        return 130
    if result.outcome == "promoted":
        print(f"Canary of {result.new_tag} promoted: {result.reason}\nThe stable pods run {result.new_tag}.")
        return 0
    if result.outcome == "aborted":
        done = result.abort is not None and result.abort.succeeded
        print(
            f"error: release {result.release} (canary of {result.new_tag}) failed: {result.reason}\n"
            + (
                f"The canary was removed; the stable pods run {result.stable_tag}, "
                f"and imageTag is {result.stable_tag}.\n"
                if done
                else f"Removing the canary failed too: see the output above; imageTag is {result.stable_tag}.\n"
            )
            + "To release again: fix the cause, then `pulumi config set imageTag <new tag>` "
            "(or `pulumi config rm imageTag` to deploy app/VERSION) and `make up`.",
            file=sys.stderr,
        )
        return 1
    # The promotion's rollout failed: make up's own report (and its automatic rollback) says the rest.
    print(f"The canary of {result.new_tag} passed ({result.reason}), but its rollout failed:", file=sys.stderr)
    return print_up(result.final) if result.final is not None else 1

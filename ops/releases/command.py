"""Releases a person can read and undo: ``history``, ``rollback`` and ``up`` with automatic rollback.

Each action drives the stack through the engine (``ops.engine``: the
Automation API on the project directory, so the program runs exactly as under
``pulumi up``), returns a typed result, and its command prints that result.
Releases are numbered from the stack's update history (``ops.releases.model``).

- ``history``: one row per update, newest first.
- ``rollback``: sets ``imageTag`` to the release's tag (or the given tag) and
  runs the update, waiting for the rollout; it refuses, changing nothing, a
  release that does not exist or failed, the tag already running, a value
  that is neither a number nor a valid tag, and a tag the cluster cannot pull.
- ``up``: ``pulumi up`` with a confirmation (skipped by ``--yes``); when the
  rollout fails and ``rollbackOnFailure`` is true, it deploys the last
  successful release's tag again, once, sets ``imageTag`` to it and exits
  non-zero saying what failed, why, and what runs now.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pulumi
import yaml
from pulumi import automation as auto

from components.labels import selector_labels
from components.rollout import CANARY
from components.settings import APP_VERSION_TAG, Settings, StackConfig, load_settings
from components.values import registry_host
from components.webapp import DEPLOYMENT_NAME
from ops import diagnosis, engine
from ops.cluster import Cluster
from ops.cluster import Target as ClusterTarget
from ops.diagnosis import PROGRESS_DEADLINE, Diagnosis
from ops.image_check import ImageCheck
from ops.releases.model import (
    IMAGE_DIGEST_KEY,
    IMAGE_TAG_KEY,
    AppVersionAt,
    AutoRollback,
    PushRefusal,
    Refusal,
    Release,
    RolloutFailure,
    Target,
    auto_rollback_target,
    cause_line,
    cause_tag,
    cause_tag_value,
    causes_in_tags,
    push_refusal,
    release_message,
    releases,
    rollback_target,
    rollout_failure,
    running_release,
    table,
)
from ops.releases.promotion import DIGEST_KEY, history_dir, recorded_resources, stack_file_with
from ops.update_flags import UpdateFlags
from project import APP_DIR, DEPLOYMENT_TYPE, IMAGE_TYPE, NAME, ROOT, VERSION_FILE, config_key, read_app_version

#: How to release again after an automatic rollback, in every such message.
RELEASE_AGAIN = (
    "To release again: fix the cause, then `pulumi config set imageTag <new tag>` "
    "(or `pulumi config rm imageTag` to deploy app/VERSION) and `make up`."
)


@dataclass(frozen=True)
class UpOutcome:
    """What one update did.

    ``rollout`` is Kubernetes' verdict when the update failed on the
    Deployment's create or update (its rollout); None for a success and for
    any other failure. ``image_errors`` are the engine's errors on the image's
    build or push. ``diagnosis``: what the rollout's new pods showed, for a
    failed rollout (None when the cluster was not read). ``stopped``: the
    update was stopped on a terminal cause, before its timeout.
    """

    succeeded: bool
    changes: Mapping[str, int] = field(default_factory=dict)
    rollout: RolloutFailure | None = None
    image_errors: Sequence[str] = ()
    diagnosis: Diagnosis | None = None
    stopped: bool = False


class Deployer(Protocol):
    """What the actions need from a stack. ``PulumiStack`` is the real one; tests pass a fake."""

    @property
    def name(self) -> str:
        """The stack's name."""
        ...

    def history(self) -> list[auto.UpdateSummary]:
        """Every recorded operation of the stack, any order."""
        ...

    def config(self) -> dict[str, str]:
        """The stack's config under full keys, Pulumi.yaml's defaults included, as the program sees it."""
        ...

    def set_image_tag(self, tag: str) -> None:
        """Write ``imageTag`` to the stack's config."""
        ...

    def set_config(self, key: str, value: str) -> None:
        """Write one plain value to the stack's config; ``key`` is short (``imageDigest``)."""
        ...

    def record_cause(self, number: int, cause: str) -> None:
        """Keep why release ``number`` failed beside the stack (a stack tag), for ``make history``."""
        ...

    def recorded_causes(self) -> dict[int, str]:
        """The causes ``record_cause`` kept, by release number."""
        ...

    def preview(self) -> None:
        """Show what an update would change."""
        ...

    def up(self, message: str, *, whole_stack: bool = False) -> UpOutcome:
        """Run the update with ``message``, streaming the engine's output; wait for the rollout.

        ``whole_stack``: without the flags that narrow or change the update (``--target``, ``--replace``…), as an
        automatic rollback must run.
        """
        ...


#: The steps that create or update a resource: only in these does a rollout or a build run. A refresh
#: (``refresh: always`` in Pulumi.yaml) reads the Deployment first, as a step of its own.
CHANGE_OPS = frozenset({"create", "update", "replace", "create-replacement"})


def failed_change(report: engine.Report, type_token: str) -> tuple[engine.Step, list[str]] | None:
    """The create or update of a resource of ``type_token`` that failed in ``report``, with its error messages.

    A step failed when the engine says so (``resOpFailedEvent``) or reported an
    error on its resource; what its refresh reported before is no part of it.
    """
    for step in report.steps:
        if step.type != type_token or step.op not in CHANGE_OPS:
            continue
        errors = [item.message for item in report.diagnostics_on(step.urn) if item.severity == "error"]
        if step.failed or errors:
            return step, errors
    return None


def deployment_status(resources: Sequence[Mapping[str, Any]], urn: str) -> Mapping[str, Any] | None:
    """The ``.status`` of the Deployment ``urn`` as the stack's state recorded it, or None."""
    for resource in resources:
        if resource.get("urn") == urn:
            status = (resource.get("outputs") or {}).get("status")
            return status if isinstance(status, Mapping) else None
    return None


def _print_error(line: str) -> None:
    # The CLI's stderr: its own errors (a missing plugin, a locked stack) are not in the engine's output.
    print(line, file=sys.stderr)


class PulumiStack:
    """A stack of the project directory, through the engine layer."""

    def __init__(
        self,
        stack: auto.Stack,
        *,
        flags: UpdateFlags | None = None,
        output: engine.Output = print,
        watch: bool = True,
    ) -> None:
        """``watch``: read the cluster while an update rolls out, to stop it on a terminal cause and say why a
        rollout failed (``ops.diagnosis``); tests of the engine's side turn it off."""
        self._stack = stack
        self._flags = flags or UpdateFlags()
        self._output = output
        self._watch = watch
        self._config: dict[str, str] | None = None

    @classmethod
    def open(
        cls, name: str, *, create: bool, flags: UpdateFlags | None = None, output: engine.Output = print
    ) -> PulumiStack:
        """Select the stack (or create it, for ``up``); raises ``Refusal`` when it does not exist.

        ``flags`` are Pulumi's update flags for its previews and updates (``make up ARGS=…``). ``output`` receives
        the engine's display (stdout; stderr when stdout is for JSON).
        """
        try:
            return cls(engine.open_stack(name, create=create), flags=flags, output=output)
        except engine.NoSuchStack:
            raise Refusal(f"there is no stack {name!r} in this backend; `make up STACK={name}` creates it") from None

    @property
    def name(self) -> str:
        return self._stack.name

    def history(self) -> list[auto.UpdateSummary]:
        return engine.history(self._stack)

    def config(self) -> dict[str, str]:
        """The stack's config, read once until this object changes it: each read decrypts the stack's secrets
        (``pulumi config --show-secrets``; about 0.3 s with a passphrase)."""
        if self._config is None:
            self._config = engine.config(self._stack)
        return dict(self._config)

    def set_image_tag(self, tag: str) -> None:
        self.set_config("imageTag", tag)

    def set_config(self, key: str, value: str) -> None:
        engine.set_config(self._stack, config_key(key), value)
        self._config = None

    def record_cause(self, number: int, cause: str) -> None:
        try:
            self._stack.set_tag(cause_tag(number), cause_tag_value(cause))
        except auto.CommandError as error:
            # The cause was printed already; only history will lack it.
            _print_error(f"warning: could not keep release {number}'s cause as a stack tag: {error}")

    def recorded_causes(self) -> dict[int, str]:
        try:
            return causes_in_tags(self._stack.list_tags())
        except auto.CommandError:
            return {}

    def resources(self) -> list[Mapping[str, Any]]:
        return engine.resources(self._stack)

    def recorded_resources(self, release: Release) -> list[Mapping[str, Any]] | None:
        """The state ``release``'s update left, as a file backend keeps a copy of it; None for another backend."""
        directory = history_dir(engine.backend_url(self._stack), NAME, self.name)
        return recorded_resources(directory, release) if directory is not None and directory.is_dir() else None

    def preview_with(self, config: Mapping[str, str]) -> engine.Report:
        """The stack's preview with ``config`` (short keys) set in a copy of its config file: nothing is written."""
        stack_file = Path(self._stack.workspace.work_dir) / f"Pulumi.{self.name}.yaml"
        document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) if stack_file.is_file() else None
        with tempfile.TemporaryDirectory(prefix="promote-") as directory:
            copy = Path(directory) / stack_file.name
            copy.write_text(yaml.safe_dump(stack_file_with(document, config), sort_keys=False), encoding="utf-8")
            return engine.preview(
                self._stack,
                diff=True,
                flags=self._flags,
                config_file=copy,
                on_output=self._output,
                on_error=_print_error,
            )

    def preview(self) -> None:
        engine.preview(self._stack, diff=True, flags=self._flags, on_output=self._output, on_error=_print_error)

    def up(self, message: str, *, whole_stack: bool = False) -> UpOutcome:
        flags = self._flags.for_rollback() if whole_stack else self._flags
        if not self._watch:
            report = engine.up(self._stack, message=message, flags=flags, on_output=self._output, on_error=_print_error)
            return self.outcome(report)
        # An automatic rollback is given its full time: the failed release's pods, still terminating, can hold a
        # quota or a node's room for a few seconds, which a fail-fast rule would take for a cause.
        watcher, stopped = self.watcher(fail_fast=not whole_stack)
        watcher.start()
        try:
            report = engine.up(self._stack, message=message, flags=flags, on_output=self._output, on_error=_print_error)
        finally:
            found = watcher.stop()
            watcher.close()
        return self.outcome(report, found, stopped=stopped.is_set())

    def watcher(self, *, fail_fast: bool) -> tuple[diagnosis.Watcher, threading.Event]:
        """A watcher of the stack's Deployment (``ops.diagnosis``) and the event it sets when it stopped the update:
        with ``fail_fast``, on the first terminal cause or once Kubernetes' progress deadline has passed."""
        namespace = validated(self, read_app_version()).namespace
        target = ClusterTarget.of_stack(self.config(), namespace)
        stopped = threading.Event()

        def connect() -> Cluster:
            return Cluster.connect(target)

        def stop(found: Diagnosis) -> None:
            if not fail_fast:
                return
            self._output(f"\n{stop_reason(found)}\nStopping the update (as Ctrl-C does)...\n")
            if engine.cancel_update():
                stopped.set()

        label_selector = diagnosis.selector(selector_labels(namespace))
        return diagnosis.Watcher(connect, label_selector, deployment=DEPLOYMENT_NAME, on_over=stop), stopped

    def outcome(self, report: engine.Report, found: Diagnosis | None = None, *, stopped: bool = False) -> UpOutcome:
        """What the update of ``report`` did; for a failed rollout, Kubernetes' verdict from the stack's state.

        ``found`` is what the watcher saw of the rollout's pods; ``stopped``: it stopped the update.
        """
        if not report.failed:
            return UpOutcome(True, report.changes())
        image = failed_change(report, IMAGE_TYPE)
        image_errors = image[1] if image else []
        deployment = failed_change(report, DEPLOYMENT_TYPE)
        if deployment is None:
            return UpOutcome(False, image_errors=image_errors)
        step, errors = deployment
        if stopped and found is not None:
            # The state keeps the Deployment as it was before (the await was cancelled): the verdict is the watcher's.
            verdict = stopped_verdict(found)
            return UpOutcome(False, rollout=verdict, image_errors=image_errors, diagnosis=found, stopped=True)
        # The Kubernetes provider records the live Deployment of a failed await, status included.
        status = deployment_status(engine.resources(self._stack), step.urn)
        rollout = rollout_failure(status, errors[0] if errors else "")
        return UpOutcome(False, rollout=rollout, image_errors=image_errors, diagnosis=found)


def stop_reason(found: Diagnosis) -> str:
    """Why the watcher stops the update: a terminal cause, else Kubernetes' progress deadline and what it waited on."""
    if not found.gave_up:
        return f"The rollout cannot succeed: {found.headline()}"
    waiting = f"\nIts new pods are waiting on: {found.headline()}" if found.causes else ""
    return f"Kubernetes gave up on the rollout: {PROGRESS_DEADLINE}: {found.deadline}{waiting}"


def stopped_verdict(found: Diagnosis) -> RolloutFailure:
    """The verdict on an update the watcher stopped: Kubernetes' own when its deadline passed, else the cause."""
    if not found.gave_up:
        return RolloutFailure(error=f"stopped waiting, the rollout cannot succeed: {found.headline()}")
    return RolloutFailure(PROGRESS_DEADLINE, found.deadline)


def keep_cause(deployer: Deployer, number: int, outcome: UpOutcome) -> None:
    """Keep the cause of release ``number`` when its rollout failed and its new pods showed one (``record_cause``).

    Whatever follows (an automatic rollback, nothing at all with ``rollbackOnFailure: false``, another failure),
    ``make history`` then has one line of cause for it.
    """
    if not outcome.succeeded and outcome.diagnosis is not None and outcome.diagnosis.causes:
        deployer.record_cause(number, outcome.diagnosis.headline())


def git_app_version_at(commit: str) -> str | None:
    """``app/VERSION`` as committed at ``commit`` in the project's git repository, or None."""
    return _git("show", f"{commit}:{APP_DIR}/{VERSION_FILE}")


def git_tag_commit(name: str) -> str | None:
    """The commit the git tag ``name`` points at in the project's repository, or None when there is no such tag."""
    return _git("rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}")


def _git(*args: str) -> str | None:
    """What ``git <args>`` prints in the project's repository, stripped; None when it fails, prints nothing,
    or git is not installed."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def validated(deployer: Deployer, app_version: str, **overrides: str) -> Settings:
    """The stack's settings, with ``overrides`` (short keys), validated as the program does; ``Refusal`` if bad."""
    values = {**deployer.config(), **{f"{NAME}:{key}": value for key, value in overrides.items()}}
    try:
        return load_settings(StackConfig(NAME, values), project=NAME, stack=deployer.name, app_version=app_version)
    except pulumi.RunError as error:
        raise Refusal(str(error)) from None


def _changes(changes: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {op}" for op, count in sorted(changes.items())) or "none"


def _reason(outcome: UpOutcome) -> str:
    return str(outcome.rollout) if outcome.rollout is not None else "see the output above"


def diagnosis_text(what: str, outcome: UpOutcome) -> str:
    """Why the rollout of ``what`` (``release 6 (tag 0.4)``) failed, from its new pods: the lines ``make up`` prints."""
    found = outcome.diagnosis
    if found is None:
        return ""
    if not found.causes and not found.refused:
        where = f" (ReplicaSet {found.replica_set})" if found.replica_set else ""
        return f"The new pods of {what}{where} show no cause: see Kubernetes' verdict below."
    head = f"Why {what} failed, from its new pods (ReplicaSet {found.replica_set or '?'}):"
    refused = " The rollout's verdict stands alone for what could not be read." if found.refused else ""
    return "\n".join([head, *found.lines()]) + refused


# ---------------------------------------------------------------------------
# history


@dataclass(frozen=True)
class HistoryResult:
    """A stack's releases, oldest first."""

    stack: str
    releases: Sequence[Release]


def history(deployer: Deployer, app_version_at: AppVersionAt) -> HistoryResult:
    """The stack's releases."""
    return HistoryResult(deployer.name, releases(deployer.history(), app_version_at, deployer.recorded_causes()))


def print_history(result: HistoryResult, *, as_json: bool) -> int:
    """Print the releases newest first: a table, or JSON for scripts."""
    if as_json:
        print(json.dumps([r.as_json() for r in reversed(result.releases)], indent=2))
    elif result.releases:
        print(table(result.releases))
    else:
        print(f"stack {result.stack} has no release yet: `make up` makes the first")
    return 0


def history_command(deployer: Deployer, app_version_at: AppVersionAt, *, as_json: bool) -> int:
    """``make history``."""
    return print_history(history(deployer, app_version_at), as_json=as_json)


# ---------------------------------------------------------------------------
# rollback


@dataclass(frozen=True)
class RollbackResult:
    """A rollback that ran: what it deployed, the release it is recorded as, and how its update went."""

    stack: str
    target: Target
    previous_tag: str
    new_release: int
    outcome: UpOutcome

    @property
    def origin(self) -> str:
        return f" (release {self.target.release.number})" if self.target.release else ""

    @property
    def config_change(self) -> str:
        return f"imageTag: {self.previous_tag} -> {self.target.tag}"


def rollback(
    deployer: Deployer,
    value: str,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    check: ImageCheck | None,
    announce: Callable[[str], None] = print,
) -> RollbackResult:
    """Deploy the tag of release ``value`` (or the tag ``value``); ``Refusal`` before anything changes.

    ``announce`` receives what is about to be deployed, before the engine's output.
    """
    found = deployer.history()
    numbered = releases(found, app_version_at)
    target = rollback_target(value, numbered, running_release(found, numbered))
    config = deployer.config()
    current = config.get(IMAGE_TAG_KEY, APP_VERSION_TAG)
    settings = validated(deployer, app_version, imageTag=target.tag, imageDigest=target.digest)
    if check is not None:
        # A promoted release is deployed again by its digest, which is what must still be there.
        problem = check(settings.image_repository, target.digest or target.tag)
        if problem is not None:
            raise Refusal(problem)

    origin = f" (release {target.release.number})" if target.release else ""
    announce(f"Rolling back stack {deployer.name} to {settings.image_repository}:{target.tag}{origin}")
    action = f"rollback to release {target.release.number}" if target.release else "rollback to tag"
    deployer.set_image_tag(target.tag)
    if config.get(IMAGE_DIGEST_KEY, "") != target.digest:
        deployer.set_config(DIGEST_KEY, target.digest)
    outcome = deployer.up(release_message(action, settings.image_repository, target.tag, deployer.name))
    keep_cause(deployer, len(numbered) + 1, outcome)
    return RollbackResult(deployer.name, target, current, len(numbered) + 1, outcome)


def print_rollback(result: RollbackResult) -> int:
    """Print how the rollback went; its exit status."""
    if not result.outcome.succeeded:
        explained = diagnosis_text(f"release {result.new_release} (tag {result.target.tag})", result.outcome)
        if explained:
            print(explained, file=sys.stderr)
        print(
            f"error: the rollback to {result.target.tag} failed (release {result.new_release}): "
            f"{_reason(result.outcome)}\n"
            f"{result.config_change} stays set; the cluster is as Kubernetes left it.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Rolled back stack {result.stack} to tag {result.target.tag}{result.origin}, "
        f"recorded as release {result.new_release}.\n"
        f"  {result.config_change}\n"
        f"  resources: {_changes(result.outcome.changes)}"
    )
    return 0


def rollback_command(
    deployer: Deployer, value: str, *, app_version: str, app_version_at: AppVersionAt, check: ImageCheck | None
) -> int:
    """``make rollback TO=<value>``."""
    result = rollback(deployer, value, app_version=app_version, app_version_at=app_version_at, check=check)
    return print_rollback(result)


# ---------------------------------------------------------------------------
# up


@dataclass(frozen=True)
class UpResult:
    """What ``make up`` did.

    ``outcome`` is the update's (None when the confirmation was declined).
    After a failed rollout, ``failed`` names the release, ``auto_rollback``
    says whether and to what it was rolled back (None when
    ``rollbackOnFailure`` is false), ``rollback`` is that rollback's update,
    recorded as release ``rollback_release``.
    """

    settings: Settings
    outcome: UpOutcome | None
    failed: str = ""
    auto_rollback: AutoRollback | None = None
    rollback: UpOutcome | None = None
    rollback_release: int = 0

    @property
    def declined(self) -> bool:
        return self.outcome is None


def up(
    deployer: Deployer,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    confirm: Callable[[], bool] | None,
    message: str | None = None,
    announce: Callable[[str], None] = print,
) -> UpResult:
    """``pulumi up``, then, on a failed rollout with ``rollbackOnFailure``, one rollback to the last good tag.

    ``confirm`` is asked after the preview; None skips both (``--yes``).
    ``message`` is the update's; by default the Deployment's change-cause, which names the image.
    ``announce`` receives the news of an automatic rollback, before its engine output.
    """
    settings = validated(deployer, app_version)
    before = releases(deployer.history(), app_version_at)
    if confirm is not None:
        deployer.preview()
        if not confirm():
            return UpResult(settings, None)
    outcome = deployer.up(message or settings.change_cause)
    if outcome.succeeded or outcome.rollout is None:
        return UpResult(settings, outcome)

    failed = f"release {len(before) + 1} (tag {settings.image_tag})"
    keep_cause(deployer, len(before) + 1, outcome)
    explained = diagnosis_text(failed, outcome)
    if explained:
        # Ahead of the rollback's own output and message, so the reader sees why first.
        announce(f"\n{explained}")
    if not settings.rollback_on_failure:
        return UpResult(settings, outcome, failed)
    decision = auto_rollback_target(before, settings.image_tag, settings.image_digest)
    if decision.release is None or decision.release.image_tag is None:
        return UpResult(settings, outcome, failed, decision)

    last, tag = decision.release, decision.release.image_tag
    announce(f"\nThe rollout of {failed} failed; rolling back to release {last.number} (tag {tag}).\n")
    deployer.set_image_tag(tag)
    if last.recorded_digest != settings.image_digest:
        deployer.set_config(DIGEST_KEY, last.recorded_digest)
    action = f"automatic rollback to release {last.number} after {failed} failed"
    recorded = release_message(action, settings.image_repository, tag, deployer.name)
    if outcome.diagnosis is not None and outcome.diagnosis.causes:
        # The failed update's own entry cannot be changed afterwards: its cause goes into the next one's message.
        recorded += "\n" + cause_line(len(before) + 1, outcome.diagnosis.headline())
    again = deployer.up(recorded, whole_stack=True)
    keep_cause(deployer, len(before) + 2, again)
    return UpResult(settings, outcome, failed, decision, again, len(before) + 2)


def _push_refused_message(settings: Settings, refused: PushRefusal) -> str:
    """The push failed: the registry, the image, why; and that the Deployment was not changed (it needs the digest)."""
    image = f"{settings.image_repository}:{settings.image_tag}"
    hint = f"\n{refused.hint}" if refused.hint else ""
    return (
        f"error: the push of {image} to {registry_host(settings.image_repository)} failed: {refused.reason}{hint}\n"
        "The Deployment was not changed: it still runs the image it ran before. "
        "Run `make up` again once the registry accepts the push."
    )


def _what_now(result: UpResult) -> str:
    decision = result.auto_rollback
    if decision is None:
        return (
            "rollbackOnFailure is false: nothing was rolled back, the cluster is as Kubernetes left it. "
            "Roll back with `make rollback TO=<release or tag>` (see `make history`)."
        )
    if decision.release is None or result.rollback is None:
        return f"Not rolled back: {decision.why_not}."
    last, tag = decision.release, decision.release.image_tag
    if result.rollback.succeeded:
        return (
            f"Rolled back to release {last.number} (tag {tag}), recorded as release {result.rollback_release}: "
            f"the rollout completed and imageTag is now {tag}.\n{RELEASE_AGAIN}"
        )
    return (
        f"The rollback to release {last.number} (tag {tag}) failed too (release {result.rollback_release}): "
        f"{_reason(result.rollback)}\n"
        f"Nothing more was tried: the cluster is as Kubernetes left it, and imageTag is {tag}. "
        "Inspect it with `kubectl rollout status`, then `make rollback TO=<release or tag>`."
    )


def up_error(result: UpResult) -> str:
    """The error ``make up`` ends with, printed to stderr and kept in its JSON; empty when it succeeded, and when the
    engine's own output said it (bad config, a program error, an unreachable cluster)."""
    outcome = result.outcome
    if outcome is None:
        return "update declined: nothing was changed"
    if outcome.succeeded:
        return ""
    if outcome.rollout is None:
        refused = push_refusal(outcome.image_errors, registry_host(result.settings.image_repository) or "")
        if refused is not None:
            return _push_refused_message(result.settings, refused)
        # Otherwise not a rollout: bad config, a program error, an unreachable cluster; the engine said which above.
        return ""
    cause = ""
    headline = outcome.diagnosis.headline() if outcome.diagnosis is not None else ""
    if headline and headline not in str(outcome.rollout):
        # A verdict of Kubernetes' own (its progress deadline) says when, the cause says why.
        cause = f"\n  cause: {headline}"
    return f"error: {result.failed} failed: {outcome.rollout}{cause}\n{_what_now(result)}"


def print_up(result: UpResult) -> int:
    """Print what ``make up`` did beyond the engine's own output; its exit status."""
    error = up_error(result)
    if error:
        print(error, file=sys.stderr)
    return 0 if result.outcome is not None and result.outcome.succeeded else 1


def _outcome_json(outcome: UpOutcome | None) -> dict[str, object] | None:
    if outcome is None:
        return None
    return {
        "succeeded": outcome.succeeded,
        "stopped": outcome.stopped,
        "verdict": str(outcome.rollout) if outcome.rollout is not None else "",
        "changes": dict(outcome.changes),
        "diagnosis": outcome.diagnosis.as_json() if outcome.diagnosis is not None else None,
    }


def up_json(result: UpResult, stack: str, exit_code: int) -> dict[str, object]:
    """``make up``'s result for machines (``--json``, ``OUT=``): what failed, why, and what was rolled back."""
    decision = result.auto_rollback
    last = decision.release if decision is not None else None
    rollback: dict[str, object] | None = None
    if last is not None and result.rollback is not None:
        rollback = {
            "toRelease": last.number,
            "tag": last.image_tag,
            "release": result.rollback_release,
            **(_outcome_json(result.rollback) or {}),
        }
    outcome = result.outcome
    state = "declined" if outcome is None else "succeeded" if outcome.succeeded else "failed"
    return {
        "stack": stack,
        "imageTag": result.settings.image_tag,
        "result": state,
        "exitCode": exit_code,
        "failedRelease": result.failed,
        "update": _outcome_json(outcome),
        "rollback": rollback,
        "notRolledBack": decision.why_not if decision is not None and rollback is None else "",
        "error": up_error(result),
    }


def write_json(path: Path, document: Mapping[str, object]) -> None:
    """Write a result as JSON (its directory made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def up_command(
    deployer: Deployer,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    confirm: Callable[[], bool] | None,
    message: str | None = None,
    as_json: bool = False,
    out: Path | None = None,
) -> int:
    """``make up``: a canary release when the stack's ``rolloutStrategy`` is canary and a stable release runs.

    ``as_json`` prints a rolling release's result as JSON on stdout (the engine's display goes to stderr), ``out``
    writes the same JSON to a file.
    """
    announce = _print_error if as_json else print
    if validated(deployer, app_version).strategy == CANARY and isinstance(deployer, PulumiStack):
        from ops.releases import canary  # noqa: PLC0415  # it imports this module

        done = canary.release(
            deployer, app_version=app_version, app_version_at=app_version_at, confirm=confirm, connect=canary.connect
        )
        if done is not None:
            return canary.print_canary(done)
        announce("No stable release runs to compare a canary with: a rolling release.")
    result = up(
        deployer,
        app_version=app_version,
        app_version_at=app_version_at,
        confirm=confirm,
        message=message,
        announce=announce,
    )
    code = print_up(result)
    document = up_json(result, deployer.name, code)
    if out is not None:
        write_json(out, document)
    if as_json:
        print(json.dumps(document, indent=2))
    return code

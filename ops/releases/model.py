"""Releases of a stack, read from its update history: numbers, image tags, the rules of rollback.

Pure functions over the Automation API's own ``UpdateSummary`` objects
(``stack.history()``) and over what the engine reported, shared by the command
(``ops.releases.command``) and its tests.

A release is one ``update`` in the stack's history, succeeded or failed,
numbered oldest first from 1. Pulumi's own ``version`` cannot number them: the
file backend records 0 for every update. ``refresh`` and ``destroy`` deploy no
tag, so they are not releases; a destroy after the newest release means
nothing is running.

The image tag of a release is the ``imageTag`` its update recorded. When that
is the ``app/VERSION`` marker, the tag was the app's version at the time, found
(in this order) in the update's message, where ``make up`` and ``make
rollback`` write the image they deploy (``release_message``, the same text as
the Deployment's change-cause); or as ``app/VERSION`` committed at the git
commit the update recorded, provided the work tree was clean (``git.dirty``
false) and the commit is in this repository. Otherwise (a plain ``pulumi up``
from a modified work tree) it cannot be known from history, and the release
shows ``?`` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pulumi import automation as auto

from components.settings import APP_VERSION_TAG
from components.values import image_tag_problem
from components.webapp import ROLLOUT_COMPLETE_REASON
from ops.diagnosis import PROGRESS_DEADLINE, progressing
from project import NAME, config_key

#: The history kind of a ``pulumi up``; the only kind that is a release.
UPDATE = "update"
#: The history kind of a ``pulumi destroy``: after one, nothing runs.
DESTROY = "destroy"
#: The result of an update that finished without error.
SUCCEEDED = "succeeded"
#: The full config key of the tag.
IMAGE_TAG_KEY = config_key("imageTag")
#: The full config key of a pinned manifest digest (``make promote`` sets it; empty for none).
IMAGE_DIGEST_KEY = config_key("imageDigest")
#: Length of a commit shown in the table, as ``git log --oneline`` shows it.
SHORT_COMMIT = 7
#: Shown for a tag that history cannot tell.
UNKNOWN_TAG = "?"

#: The full config key of a canary in progress (``make up`` sets it while a canary runs).
CANARY_TAG_KEY = config_key("canaryImageTag")
#: The derived results of a canary's stage 1 release that was not promoted.
INTERRUPTED = "interrupted"
FAILED = "failed"
IN_CANARY = "in canary"

#: ``app/VERSION`` as committed at a commit, or None when that commit is not in this repository.
AppVersionAt = Callable[[str], str | None]

_RELEASE_NUMBER = re.compile(r"^[0-9]+$")
# The stages of a canary release, as its update messages name them (``canary_stage1`` and the two below).
_CANARY_STAGE1 = "canary stage 1 of 2"
_CANARY_PROMOTED = "canary stage 2 of 2, promoted"
_CANARY_ABORTED = re.compile(r"^canary of \S+ aborted \((.*)\): image \S+, stack \S+$")
# The line an update's message carries about an earlier release that failed: ``cause_line``.
_CAUSE_LINE = re.compile(r"^release ([0-9]+) failed: (.+)$", re.M)
# The image in a release message: the repository may hold a registry port, so the tag is after the last colon.
_MESSAGE_IMAGE = re.compile(r"\bimage (\S+):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}), stack \S+$")
# The Docker provider reports a failed push as text only: no status, no structured error. These are its prefix of
# a failed push, and Docker's words for a registry error that is not JSON (the one place engine text is parsed):
# 'error parsing HTTP 405 response body: invalid character 'M' ...: "Method not allowed\n"'.
_PUSH_OUTPUT = "error reading push output: "
_BARE_STATUS = re.compile(r'error parsing HTTP ([0-9]{3}) response body: .*: "(.*)"$')
# What to do about a refusal, by HTTP status, then by the registry's words (lowercase).
_STATUS_HINTS = {
    401: "The registry refused it: it wants credentials; run `docker login {registry}` first.",
    403: "The registry refused it: these credentials may not push to this repository.",
    405: "The registry refused it: it accepts no pushes, as when it is read-only (maintenance, garbage collection).",
}
_ERROR_HINTS = (
    (("authentication is required", "unauthorized"), _STATUS_HINTS[401]),
    (("denied",), _STATUS_HINTS[403]),
)


@dataclass(frozen=True)
class PushRefusal:
    """Why a push failed.

    ``reason`` is the registry's or Docker's words; ``hint`` is what they mean, a sentence (empty when unknown).
    """

    reason: str
    hint: str


class Refusal(Exception):
    """A request refused before anything changed; the message says what is wrong and what is allowed."""


@dataclass(frozen=True, kw_only=True)
class Release:
    """One update of the stack, numbered oldest first from 1.

    ``image_tag`` is None when history cannot tell it; ``tag_source`` then
    says why, and otherwise where the tag came from. ``commit`` is the full
    git commit the update recorded, empty when there was none.
    ``start_time`` is in UTC. ``recorded_digest`` is the ``imageDigest`` its
    update recorded (the digest a promotion pinned), empty for none.
    """

    number: int
    start_time: datetime
    result: str
    recorded_tag: str
    image_tag: str | None
    tag_source: str
    commit: str
    dirty: bool
    message: str
    recorded_digest: str = ""
    canary: str = ""
    cause: str = ""

    @property
    def succeeded(self) -> bool:
        return self.result == SUCCEEDED

    @property
    def tag_label(self) -> str:
        """The tag, or ``?`` when history cannot tell it."""
        return self.image_tag if self.image_tag is not None else UNKNOWN_TAG

    @property
    def commit_label(self) -> str:
        """The short commit, with ``-dirty`` when the work tree had changes."""
        return self.commit[:SHORT_COMMIT] + ("-dirty" if self.dirty else "")

    def as_json(self) -> dict[str, object]:
        """The release for scripts (``make history JSON=1``); ``imageTag`` is null when unknown."""
        return {
            "release": self.number,
            "time": self.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "imageTag": self.image_tag,
            "recordedImageTag": self.recorded_tag,
            "imageDigest": self.recorded_digest,
            "tagSource": self.tag_source,
            "result": self.result,
            "commit": self.commit,
            "dirty": self.dirty,
            "message": self.message,
            "canary": self.canary or None,
            "cause": self.cause,
        }


def release_message(action: str, repository: str, tag: str, stack: str) -> str:
    """The update message ``make up`` and ``make rollback`` record: what was done, the image and the stack.

    ``release_message("pulumi up", …)`` is the Deployment's change-cause
    (``Settings.change_cause``), so history and ``kubectl rollout history`` read alike.
    """
    return f"{action}: image {repository}:{tag}, stack {stack}"


def canary_stage1(detail: str) -> str:
    """The action of a canary's stage 1 update, for ``release_message``: the canary's pods and share."""
    return f"{_CANARY_STAGE1}, {detail}"


def canary_promoted(reason: str) -> str:
    """The action of a canary's promotion, with the figures that passed it."""
    return f"{_CANARY_PROMOTED} ({reason})"


def canary_aborted(tag: str, reason: str) -> str:
    """The action of a canary's abort, with the figures that failed it."""
    return f"canary of {tag} aborted ({reason})"


def _canary_outcome(later: Sequence[Release]) -> tuple[str, str | None]:
    """(the canary's outcome, its stage 1 release's result or None to keep Pulumi's), from the releases after it."""
    if not later:
        return "running or interrupted: the next make up finishes it", IN_CANARY
    following = later[0]
    if following.message.startswith(_CANARY_PROMOTED):
        return f"promoted in release {following.number}", None
    aborted = _CANARY_ABORTED.match(following.message)
    if aborted:
        return f"aborted in release {following.number}: {aborted.group(1)}", FAILED
    if following.message.startswith(_CANARY_STAGE1):
        return f"interrupted; finished by release {following.number}", INTERRUPTED
    return f"interrupted; release {following.number} did not finish it", INTERRUPTED


def cause_line(number: int, cause: str) -> str:
    """The line that records why release ``number`` failed, in a later update's message (its first line stays the
    release message): ``release 6 failed: CrashLoopBackOff (2 pods, exit code 1 (Error)): ...``."""
    return f"release {number} failed: {' '.join(cause.split())}"


def causes_in(message: str) -> dict[int, str]:
    """The causes an update's message records, by release number (``cause_line``)."""
    return {int(number): cause for number, cause in _CAUSE_LINE.findall(message)}


#: The stack tag that keeps why release N failed (``k8s-demo:cause-N``): a failed update's own message cannot be
#: changed afterwards, and no later update may carry it (``rollbackOnFailure: false``, a failed rollback).
CAUSE_TAG_PREFIX = f"{NAME}:cause-"
#: Pulumi's limit on a stack tag's value, in bytes (its ``ValidateStackTags``).
TAG_VALUE_MAX = 256


def cause_tag(number: int) -> str:
    """The stack tag's name for release ``number``'s cause."""
    return f"{CAUSE_TAG_PREFIX}{number}"


def cause_tag_value(cause: str) -> str:
    """``cause`` on one line, cut to ``TAG_VALUE_MAX`` bytes (UTF-8) with an ellipsis when longer."""
    text = " ".join(cause.split())
    if len(text.encode("utf-8")) <= TAG_VALUE_MAX:
        return text
    cut = text.encode("utf-8")[: TAG_VALUE_MAX - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"


def causes_in_tags(tags: Mapping[str, str]) -> dict[int, str]:
    """The causes the stack's tags keep, by release number (``cause_tag``); other tags are left out."""
    found = {}
    for name, value in tags.items():
        number = name.removeprefix(CAUSE_TAG_PREFIX)
        if name.startswith(CAUSE_TAG_PREFIX) and number.isdigit():
            found[int(number)] = value
    return found


def tag_in_message(message: str) -> str | None:
    """The tag a ``release_message`` names, or None for any other message."""
    match = _MESSAGE_IMAGE.search(message.strip().split("\n", 1)[0])
    return match.group(2) if match else None


def _tag_of(
    config: Mapping[str, auto.ConfigValue], message: str, commit: str, dirty: bool, app_version_at: AppVersionAt
) -> tuple[str, str | None, str]:
    """(recorded tag, resolved tag or None, where it came from or why it is unknown)."""
    recorded = config.get(IMAGE_TAG_KEY)
    # A stack that never set the key deployed Pulumi.yaml's default, the marker.
    recorded_tag = recorded.value if recorded is not None else APP_VERSION_TAG
    if recorded_tag != APP_VERSION_TAG:
        return recorded_tag, recorded_tag, "imageTag"
    from_message = tag_in_message(message)
    if from_message is not None:
        return recorded_tag, from_message, "app/VERSION, named in the message"
    if not commit:
        return recorded_tag, None, "app/VERSION, and the update recorded no git commit"
    short = commit[:SHORT_COMMIT]
    if dirty:
        return recorded_tag, None, f"app/VERSION of a modified work tree at {short}"
    version = app_version_at(commit)
    if version is None:
        return recorded_tag, None, f"app/VERSION at {short}, a commit not in this repository"
    return recorded_tag, version, f"app/VERSION at {short}"


def releases(
    history: Sequence[auto.UpdateSummary], app_version_at: AppVersionAt, tagged: Mapping[int, str] | None = None
) -> list[Release]:
    """The updates of ``history`` (any order), oldest first, numbered from 1.

    A failed release's cause comes from a later update's message (``cause_line``), else from ``tagged``: the causes
    the stack's tags keep (``causes_in_tags``).
    """
    updates = sorted((h for h in history if h.kind == UPDATE), key=lambda h: h.start_time)
    causes: dict[int, str] = dict(tagged or {})
    for update in updates:
        causes.update(causes_in(update.message or ""))
    found = []
    for number, update in enumerate(updates, start=1):
        environment = update.environment or {}
        commit = environment.get("git.head", "")
        dirty = environment.get("git.dirty") == "true"
        message = update.message or ""
        recorded, tag, source = _tag_of(update.config or {}, message, commit, dirty, app_version_at)
        digest = (update.config or {}).get(IMAGE_DIGEST_KEY)
        found.append(
            Release(
                number=number,
                start_time=update.start_time,
                result=update.result,
                recorded_tag=recorded,
                image_tag=tag,
                tag_source=source,
                commit=commit,
                dirty=dirty,
                message=message.strip().split("\n", 1)[0],
                recorded_digest=digest.value if digest is not None else "",
                cause=causes.get(number, "") if update.result != SUCCEEDED else "",
            )
        )
        canary = (update.config or {}).get(CANARY_TAG_KEY)
        if canary is not None and canary.value and found[-1].message.startswith(_CANARY_STAGE1):
            # A canary's stage 1 releases the canary's tag (its message names it); the stable pods keep imageTag.
            named = tag_in_message(found[-1].message)
            found[-1] = replace(found[-1], image_tag=named, tag_source="the canary's tag, named in the message")
    # What became of each canary is told by the release after it: promoted, aborted (failed) or interrupted.
    for index, item in enumerate(found):
        if item.message.startswith(_CANARY_STAGE1) and item.succeeded:
            outcome, result = _canary_outcome(found[index + 1 :])
            found[index] = replace(item, canary=outcome, result=result or item.result)
    return found


def running_release(history: Sequence[auto.UpdateSummary], numbered: Sequence[Release]) -> Release | None:
    """The release the cluster runs: the newest one, if it succeeded and no destroy came after it."""
    deploys = [h for h in history if h.kind in (UPDATE, DESTROY)]
    if not numbered or not deploys:
        return None
    newest = max(deploys, key=lambda h: h.start_time)
    if newest.kind == DESTROY or not numbered[-1].succeeded:
        return None
    return numbered[-1]


def table(numbered: Sequence[Release]) -> str:
    """The releases newest first, one row each, then a note for every tag history cannot tell."""
    # The canary column only for a stack that ran one: its outcome per canary release.
    canaries = any(r.canary for r in numbered)
    header = ("RELEASE", "TIME (UTC)", "IMAGE TAG", "RESULT", "COMMIT", *(("CANARY",) * canaries), "MESSAGE")
    rows = [
        (
            str(r.number),
            r.start_time.strftime("%Y-%m-%d %H:%M:%S"),
            r.tag_label,
            r.result,
            r.commit_label,
            *((r.canary.split(":", 1)[0] or "-",) * canaries),
            r.message,
        )
        for r in reversed(numbered)
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]

    def line(row: Sequence[str]) -> str:
        # The release number right-aligned, as numbers are; the message last and unpadded.
        cells = [
            row[0].rjust(widths[0]),
            *(cell.ljust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)),
        ]
        return "  ".join([*cells, row[-1]]).rstrip()

    lines = [line(header)]
    for release, row in zip(reversed(numbered), rows, strict=True):
        lines.append(line(row))
        if release.cause:
            # One line of cause under a failed release, as a later update recorded it (``cause_line``).
            lines.append(f"{'':>{widths[0]}}  cause: {release.cause}")
    unknown = [r for r in reversed(numbered) if r.image_tag is None]
    if unknown:
        lines.append("")
        lines.extend(
            f"{UNKNOWN_TAG} release {r.number}: {r.tag_source}; deploy a tag by name (make rollback TO=<tag>)"
            for r in unknown
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """What a rollback deploys: a tag, and the release it came from when chosen by number."""

    tag: str
    release: Release | None = None

    @property
    def digest(self) -> str:
        """The digest the release pinned (a promotion), deployed again with its tag; empty for a tag."""
        return self.release.recorded_digest if self.release is not None else ""


def rollback_target(value: str, numbered: Sequence[Release], running: Release | None) -> Target:
    """The tag ``make rollback TO=<value>`` deploys; raises ``Refusal`` when there is none to deploy.

    A value of digits only is a release number; anything else must be a tag
    by the settings' rule (``components.values.TAG_RULE``).
    """
    value = value.strip()
    known = f"releases are 1 to {len(numbered)}" if numbered else "the stack has no release yet"
    if _RELEASE_NUMBER.match(value):
        number = int(value)
        if not 1 <= number <= len(numbered):
            raise Refusal(f"there is no release {number}: {known} (make history)")
        release = numbered[number - 1]
        if not release.succeeded:
            raise Refusal(
                f"release {number} (tag {release.tag_label}) {release.result}: its tag never ran completely; "
                "choose a release that succeeded (make history)"
            )
        if release.image_tag is None:
            raise Refusal(
                f"the tag of release {number} cannot be known: {release.tag_source}; "
                "roll back by tag instead: make rollback TO=<tag>"
            )
        target = Target(release.image_tag, release)
    else:
        problem = image_tag_problem(value)
        if problem is not None:
            raise Refusal(f"TO={value!r} is neither a release number ({known}) nor a valid tag ({problem})")
        target = Target(value)
    if running is not None and (running.image_tag, running.recorded_digest) == (target.tag, target.digest):
        raise Refusal(f"tag {target.tag} is already running (release {running.number}); nothing to roll back")
    return target


@dataclass(frozen=True)
class AutoRollback:
    """After a failed rollout: the release whose tag to deploy again, or why there is none."""

    release: Release | None
    why_not: str = ""


def auto_rollback_target(before: Sequence[Release], failed_tag: str, failed_digest: str = "") -> AutoRollback:
    """The last successful release before a failed rollout of ``failed_tag``, if deploying its tag can help.

    ``before`` are the releases before the failed update. There is no target
    when none succeeded, when its tag cannot be known, or when it is the
    failed image itself (the same tag and the same pinned digest,
    ``failed_digest``, empty for none): then the failure came from another
    setting, and deploying the same image again would fail the same way.
    """
    last = next((r for r in reversed(before) if r.succeeded), None)
    if last is None:
        return AutoRollback(None, "no earlier release succeeded")
    if last.image_tag is None:
        return AutoRollback(
            None, f"the tag of release {last.number}, the last that succeeded, is unknown: {last.tag_source}"
        )
    if (last.image_tag, last.recorded_digest) == (failed_tag, failed_digest):
        return AutoRollback(
            None,
            f"release {last.number}, the last that succeeded, runs the same tag {failed_tag}: "
            "the failure comes from another setting, which a rollback by tag cannot undo",
        )
    return AutoRollback(last)


@dataclass(frozen=True)
class RolloutFailure:
    """Why a Deployment's rollout failed, as Kubernetes reported it in the Deployment's status.

    ``reason`` and ``message`` are the ``Progressing`` condition's (``ProgressDeadlineExceeded``,
    ``ReplicaSet "…" has timed out progressing.``); both are empty when the status was not
    recorded, and ``error`` is then the engine's error on the Deployment, if any.
    """

    reason: str = ""
    message: str = ""
    error: str = ""

    def __str__(self) -> str:
        if self.reason == PROGRESS_DEADLINE:
            said = self.message.strip() or "the rollout made no progress within the Deployment's progress deadline"
            return f"{PROGRESS_DEADLINE}: {said}"
        if self.reason and not (self.reason == ROLLOUT_COMPLETE_REASON and self.error.strip()):
            # The deadline had not passed yet when the await's own timeout ran out. (A rollout back to an existing
            # ReplicaSet can keep the previous rollout's NewReplicaSetAvailable: the await's own error says more.)
            return f"{self.reason}: the rollout did not complete within its timeout"
        first = self.error.strip().split("\n", 1)[0].strip()
        return first or "the rollout did not complete"


def rollout_failure(status: Mapping[str, Any] | None, error: str = "") -> RolloutFailure:
    """Kubernetes' verdict on a failed rollout, from the Deployment's ``status``.

    ``status`` is the Deployment's ``.status`` as last recorded (None when there
    is none); ``error`` is the engine's error on the Deployment, kept for when
    the status has no ``Progressing`` condition.
    """
    verdict = progressing(status)
    if verdict is None:
        return RolloutFailure(error=error)
    return RolloutFailure(str(verdict["reason"]), str(verdict.get("message") or ""), error)


def push_refusal(diagnostics: Sequence[str], registry: str) -> PushRefusal | None:
    """Why the push of the built image failed, from the engine's error diagnostics on the image; None if none did.

    The Docker provider reports a failed push as ``error reading push output:
    <Docker's error>``. Docker's error is the registry's own when the registry
    sends one (``denied: ...``); a registry that refuses with a bare HTTP status
    (a read-only registry's ``405 Method not allowed``) comes out as a failure
    to parse that body as JSON, which names the status and the body: those are
    given instead. ``hint`` says what that means for ``registry`` (its host).
    """
    for text in diagnostics:
        _, found, error = text.partition(_PUSH_OUTPUT)
        if not found:
            continue
        error = error.strip().split("\n", 1)[0].strip()
        bare = _BARE_STATUS.search(error)
        if bare:
            status, body = int(bare.group(1)), bare.group(2).removesuffix("\\n").strip()
            return PushRefusal(f"HTTP {status} {body}".strip(), _STATUS_HINTS.get(status, "").format(registry=registry))
        lowered = error.lower()
        hint = next((h for words, h in _ERROR_HINTS if any(w in lowered for w in words)), "")
        return PushRefusal(error, hint.format(registry=registry))
    return None

"""Promotion: deploy to one stack exactly the image another stack's release ran. Pure rules, no engine.

``make promote FROM=dev TO=prod [REL=…]`` takes FROM's release (the newest
that succeeded, or the one ``REL`` names) and the image that release ran, and
sets TO's config so that TO deploys that image without building anything:

- a pushed image by its manifest digest (``<repository>@sha256:…``), which
  cannot move, unlike its tag;
- a local image (no registry host) by its tag, plus the image ID the release
  built, which TO's Docker engine must have under that tag (a local tag can be
  rebuilt, so the ID says whether it is still the same image).

Where a release's image comes from: the ``image`` stack output (what the
Deployment runs) and, for a local build, the build's image ID, both read from
the state that release's update left (``image_of_release``). History alone
cannot say it: it records config, message and result, but a build's digest
exists only once the update has pushed it. That state is the stack's current
one while the release is its newest update; for an older release, a file
backend keeps a copy of the state each update left beside that update's
history entry (``recorded_resources``), which Pulumi's own ``stack export
--version`` does not offer for a file backend.

Every refusal is raised before anything changes, with what is wrong and what is
allowed. The provenance goes into TO's update message
(``promotion_message``), so ``make history`` on TO and the PR comment show it.
"""

from __future__ import annotations

import gzip
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from components.values import registry_host
from ops.image_check import local_image_id_problem, registry_digest_problem
from ops.releases.model import DESTROY, UPDATE, Refusal, Release, release_message
from project import IMAGE_TYPE, STACK_TYPE, config_key

#: The stack output that names the image the Deployment runs (``__main__.py``).
IMAGE_OUTPUT = "image"
#: A content digest: the manifest digest of a pushed image, or a local image ID.
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: The config key (short) that pins a pushed image's manifest digest: set, nothing is built and
#: ``<imageRepository>@<imageDigest>`` is deployed.
DIGEST_KEY = "imageDigest"
#: ``git rev-parse``: a git tag's commit, or None when there is no such tag. Injected in tests.
TagCommit = Callable[[str], str | None]

_RELEASE_NUMBER = re.compile(r"^[0-9]+$")
# What make rollback and make up's automatic rollback record as their message (ops.releases.release_message).
_MANUAL_ROLLBACK = re.compile(r"^rollback to (release [0-9]+|tag)\b")
# A promotion's message: "promoted from dev release 7, sha256:<hex>: image <repository>:<tag>, stack prod".
_PROVENANCE = re.compile(
    r"^promoted from (?P<stack>\S+) release (?P<release>[0-9]+), (?:image ID )?(?P<digest>sha256:[0-9a-f]{64}):"
)


@dataclass(frozen=True, kw_only=True)
class PromotedImage:
    """The image a release ran.

    ``digest`` is the manifest digest of a pushed image (empty for a local
    one); ``image_id`` the local image ID a local build produced (empty for a
    pushed one). ``tag`` is the tag the release deployed, from its history.
    """

    repository: str
    tag: str
    digest: str = ""
    image_id: str = ""

    @property
    def pushed(self) -> bool:
        return bool(self.digest)

    @property
    def reference(self) -> str:
        """What a pod runs: ``<repository>@sha256:…`` when pushed, else ``<repository>:<tag>``."""
        return f"{self.repository}@{self.digest}" if self.pushed else f"{self.repository}:{self.tag}"

    @property
    def identity(self) -> str:
        """What makes it this image and no other: the manifest digest, or the local image ID."""
        return self.digest or self.image_id

    def describe(self) -> str:
        """``repo@sha256:…`` (tag 0.2), or ``repo:0.2`` (image ID sha256:…)."""
        if self.pushed:
            return f"{self.reference} (tag {self.tag})"
        return f"{self.reference} (image ID {self.image_id})"


def rollbacks_after(numbered: Sequence[Release]) -> dict[int, Release]:
    """The releases that ``make rollback`` undid: release number -> the rollback release that replaced it.

    A manual rollback replaces the release that was running when it started:
    the newest release before it that succeeded. (An automatic rollback
    follows a release that failed, which is refused as failed anyway.)
    """
    undone: dict[int, Release] = {}
    for index, release in enumerate(numbered):
        if not _MANUAL_ROLLBACK.match(release.message):
            continue
        running = next((r for r in reversed(numbered[:index]) if r.succeeded), None)
        if running is not None and running.number not in undone:
            undone[running.number] = release
    return undone


def _promotable(release: Release, stack: str, undone: Mapping[int, Release]) -> Release:
    if not release.succeeded:
        raise Refusal(
            f"{stack} release {release.number} (tag {release.tag_label}) {release.result}: "
            "it never ran completely, so there is nothing verified to promote; "
            f"choose a release that succeeded (make history STACK={stack})"
        )
    if release.number in undone:
        rollback = undone[release.number]
        raise Refusal(
            f"{stack} release {release.number} (tag {release.tag_label}) was rolled back by release "
            f"{rollback.number} ({rollback.message}); choose a release that was not "
            f"(make history STACK={stack})"
        )
    return release


def choose_release(numbered: Sequence[Release], stack: str, value: str | None, tag_commit: TagCommit) -> Release:
    """The release of ``stack`` to promote; ``Refusal`` when there is none to promote.

    ``value`` None (no ``REL``) means the newest release that succeeded;
    digits are a release number (``make history``); anything else is a git tag,
    meaning the newest release that succeeded at that tag's commit from a clean
    work tree. A failed release is refused, and so is one that ``make rollback``
    undid (a release judged bad should not reach the next stack).
    """
    undone = rollbacks_after(numbered)
    if not numbered:
        raise Refusal(f"stack {stack} has no release yet: `make up STACK={stack}` makes the first")
    if value is None or not value.strip():
        newest = next((r for r in reversed(numbered) if r.succeeded), None)
        if newest is None:
            raise Refusal(f"no release of {stack} succeeded: nothing verified to promote (make history STACK={stack})")
        return _promotable(newest, stack, undone)
    value = value.strip()
    if _RELEASE_NUMBER.match(value):
        number = int(value)
        if not 1 <= number <= len(numbered):
            raise Refusal(f"there is no {stack} release {number}: releases are 1 to {len(numbered)} (make history)")
        return _promotable(numbered[number - 1], stack, undone)
    commit = tag_commit(value)
    if commit is None:
        raise Refusal(
            f"REL={value!r} is neither a release number of {stack} (1 to {len(numbered)}) nor a git tag of this "
            "repository (git tag --list)"
        )
    at_commit = [r for r in numbered if r.commit == commit and not r.dirty]
    if not at_commit:
        raise Refusal(
            f"no release of {stack} ran git tag {value} ({commit[:7]}) from a clean work tree; "
            f"release that commit to {stack} first, or name a release number (make history STACK={stack})"
        )
    succeeded = [r for r in at_commit if r.succeeded]
    return _promotable((succeeded or at_commit)[-1], stack, undone)


def _outputs_of(resources: Sequence[Mapping[str, Any]], type_token: str) -> list[Mapping[str, Any]]:
    return [r.get("outputs") or {} for r in resources if r.get("type") == type_token]


def image_of_release(release: Release, stack: str, resources: Sequence[Mapping[str, Any]] | None) -> PromotedImage:
    """The image ``release`` ran, from the resources of the state its update left; ``Refusal`` when unknown.

    ``resources`` are that state's resources (a checkpoint's
    ``deployment.resources``), None when the backend kept no state for it.
    """
    if release.image_tag is None:
        raise Refusal(f"the tag of {stack} release {release.number} cannot be known: {release.tag_source}")
    if resources is None:
        raise Refusal(
            f"the state {stack} release {release.number} left is not available from this backend, so its image "
            f"digest is unknown; promote {stack}'s newest release instead (make history STACK={stack})"
        )
    stacks = _outputs_of(resources, STACK_TYPE)
    image = str(stacks[0].get(IMAGE_OUTPUT) or "") if stacks else ""
    if not image:
        raise Refusal(f"the state {stack} release {release.number} left names no image (no `{IMAGE_OUTPUT}` output)")
    if "@" in image:
        repository, _, digest = image.partition("@")
        if not DIGEST.match(digest):
            raise Refusal(f"{stack} release {release.number} ran {image}, whose digest is not a sha256 digest")
        return PromotedImage(repository=repository, tag=release.image_tag, digest=digest)
    repository, _, tag = image.rpartition(":")
    if registry_host(repository) is not None:
        raise Refusal(
            f"{stack} release {release.number} ran {image} by tag, not by digest, so what it ran cannot be told "
            f"apart from a later push of that tag; promote a release that built and pushed its image"
        )
    builds = [o for o in _outputs_of(resources, IMAGE_TYPE) if o.get("imageName") == image]
    image_id = str(builds[0].get("repoDigest") or "") if builds else ""
    if not DIGEST.match(image_id):
        raise Refusal(
            f"{stack} release {release.number} ran the local image {image} without building it, so its image ID "
            f"was not recorded; promote the release that built tag {tag} (make history STACK={stack})"
        )
    return PromotedImage(repository=repository, tag=tag, image_id=image_id)


#: The resources of a stack's state (``deployment.resources`` of ``pulumi stack export``).
Resources = Sequence[Mapping[str, Any]]


def release_resources(
    release: Release,
    history: Sequence[auto.UpdateSummary],
    current: Callable[[], Resources],
    recorded: Callable[[Release], Resources | None],
) -> Resources | None:
    """The resources of the state ``release``'s update left.

    The stack's ``current`` state while no update or destroy came after it (a
    refresh leaves the stack's outputs as they were); otherwise the copy the
    backend ``recorded`` for that update, None when it kept none.
    """
    later = any(h.kind in (UPDATE, DESTROY) and h.start_time > release.start_time for h in history)
    return recorded(release) if later else current()


def history_dir(backend_url: str, project: str, stack: str) -> Path | None:
    """Where a file backend (``file://<dir>``) keeps ``stack``'s history entries; None for any other backend.

    The project-scoped layout (``.pulumi/history/<project>/<stack>``) when it
    exists, else the older one without the project (``.pulumi/history/<stack>``).
    ``file://~`` is the home directory, as the CLI reads it.
    """
    parsed = urllib.parse.urlparse(backend_url)
    if parsed.scheme != "file":
        return None
    root = Path((parsed.netloc + parsed.path) or "~").expanduser()
    name = stack.rsplit("/", 1)[-1]
    scoped = root / ".pulumi" / "history" / project / name
    return scoped if scoped.is_dir() else root / ".pulumi" / "history" / name


def _read_json(path: Path) -> Any:  # noqa: ANN401  # whatever the backend wrote
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)


def recorded_resources(directory: Path, release: Release) -> list[Mapping[str, Any]] | None:
    """The resources of the state ``release``'s update left, from a file backend's history; None if not kept.

    Each update writes ``<stack>-<time>.history.json`` (kind, start time in
    seconds, message, result) and a copy of the state it left,
    ``<stack>-<time>.checkpoint.json``, beside it; the release is the update
    with its start time, result and message.
    """
    start = int(release.start_time.replace(tzinfo=UTC).timestamp())
    matches = []
    for entry in sorted(directory.glob("*.history.json*")):
        info = _read_json(entry)
        message = str(info.get("message") or "").strip().split("\n", 1)[0]
        if (info.get("kind"), info.get("startTime"), info.get("result"), message) == (
            "update",
            start,
            release.result,
            release.message,
        ):
            matches.append(entry)
    if len(matches) != 1:
        return None
    checkpoint = matches[0].with_name(matches[0].name.replace(".history.", ".checkpoint.", 1))
    if not checkpoint.is_file():
        return None
    latest = (_read_json(checkpoint).get("checkpoint") or {}).get("latest") or {}
    return list(latest.get("resources") or [])


def check_stacks(source: str, target: str, stacks: Sequence[str]) -> None:
    """``Refusal`` unless FROM and TO are two different stacks of this backend (``stacks``: the existing ones)."""
    if source == target:
        raise Refusal(f"FROM and TO are both {source}: promotion deploys one stack's release to another stack")
    for role, name in (("FROM", source), ("TO", target)):
        if name not in stacks:
            known = ", ".join(sorted(stacks)) or "none"
            raise Refusal(
                f"{role}={name}: there is no stack {name} in this backend (stacks: {known}); "
                f"`make stack STACK={name}` creates it"
            )


def target_repository_problem(image: PromotedImage, target_repository: str, target: str) -> str | None:
    """Why TO (whose ``imageRepository`` is ``target_repository``) cannot run this image as promoted, or None."""
    target_pushes = registry_host(target_repository) is not None
    if image.pushed and not target_pushes:
        return (
            f"{target} deploys local images ({target_repository}), but the release ran the pushed image "
            f"{image.reference}: set {target}'s imageRepository to a registry its cluster pulls from"
        )
    if not image.pushed and target_pushes:
        return (
            f"the release ran the local image {image.reference}, which has no registry digest, but {target} pulls "
            f"from {target_repository}: promote from a stack that pushes"
        )
    if not image.pushed and target_repository != image.repository:
        return (
            f"the release ran the local image {image.reference}; {target} deploys {target_repository}, "
            "another local repository: the image ID would name nothing there"
        )
    return None


def promoted_image_problem(image: PromotedImage, target_repository: str) -> str | None:
    """Can TO get exactly this image? None when it can, else why not.

    A pushed image: TO's registry is asked for the manifest digest. A local
    image: TO's Docker engine must have the tag, and it must still be the image ID the release ran.
    """
    if image.pushed:
        return registry_digest_problem(target_repository, image.digest)
    return local_image_id_problem(target_repository, image.tag, image.image_id)


def provenance_text(source: str, release: int, image: PromotedImage) -> str:
    """``promoted from dev release 7, sha256:…`` (a local image: ``…, image ID sha256:…``)."""
    identity = image.digest if image.pushed else f"image ID {image.image_id}"
    return f"promoted from {source} release {release}, {identity}"


def promotion_message(source: str, release: int, image: PromotedImage, target_repository: str, target: str) -> str:
    """TO's update message: the provenance, then the image as ``make up`` names it (so ``make history`` reads it).

    ``promoted from dev release 7, sha256:…: image registry/k8s-demo:0.2, stack prod``; a local image says
    ``image ID sha256:…``.
    """
    return release_message(provenance_text(source, release, image), target_repository, image.tag, target)


@dataclass(frozen=True)
class Provenance:
    """Where a promoted release came from: the stack, its release number, and the digest or image ID."""

    stack: str
    release: int
    digest: str

    def __str__(self) -> str:
        return f"promoted from {self.stack} release {self.release}, {self.digest}"


def provenance_in_message(message: str) -> Provenance | None:
    """The provenance a ``promotion_message`` records, or None for any other message."""
    match = _PROVENANCE.match(message.strip().split("\n", 1)[0])
    if match is None:
        return None
    return Provenance(match["stack"], int(match["release"]), match["digest"])


def stack_file_with(document: Mapping[str, Any] | None, config: Mapping[str, str]) -> dict[str, Any]:
    """A stack config file's document (``Pulumi.<stack>.yaml``) with ``config`` (short keys) set, all else kept.

    What TO's preview reads instead of its own file (``--config-file``), so the
    preview sees the promoted config while nothing is written to TO's file.
    ``document`` None is a stack without a file (its config is Pulumi.yaml's defaults).
    """
    copy = dict(document or {})
    copy["config"] = {**(copy.get("config") or {}), **{config_key(key): value for key, value in config.items()}}
    return copy


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """What ``make promote`` does to TO: set ``config`` (short keys), then update with ``message``."""

    source: str
    release: Release
    image: PromotedImage
    target: str
    target_repository: str
    config: Mapping[str, str]
    message: str

    @property
    def provenance(self) -> str:
        """Where the image comes from, as TO's release records it: ``promoted from dev release 7, sha256:…``."""
        return provenance_text(self.source, self.release.number, self.image)

    @property
    def reference(self) -> str:
        """What TO's pods will run."""
        if self.image.pushed:
            return f"{self.target_repository}@{self.image.digest}"
        return f"{self.target_repository}:{self.image.tag}"

    def plan(self) -> str:
        """The plan, for the preview mode and before the update: what, from where, which config."""
        settings = ", ".join(f"{key}={value or '(empty)'}" for key, value in self.config.items())
        identity = f"digest {self.image.digest}" if self.image.pushed else f"image ID {self.image.image_id}"
        return "\n".join(
            [
                f"Promote {self.source} release {self.release.number} to {self.target}:",
                f"  image    {self.reference}",
                f"  tag      {self.image.tag} ({identity})",
                f"  from     {self.source} release {self.release.number}, "
                f"{self.release.start_time:%Y-%m-%d %H:%M:%S} UTC, commit {self.release.commit_label or '-'}",
                f"  config   {settings}",
                f"  message  {self.message}",
            ]
        )


def plan_promotion(
    *,
    source: str,
    release: Release,
    image: PromotedImage,
    target: str,
    target_repository: str,
) -> Promotion:
    """TO's config and message for promoting ``image``; ``Refusal`` when TO cannot run it as promoted.

    TO gets FROM's tag and, for a pushed image, its digest (``DIGEST_KEY``); a
    local image is deployed by its tag, whose image ID the command checks first.
    """
    problem = target_repository_problem(image, target_repository, target)
    if problem is not None:
        raise Refusal(problem)
    config = {"imageTag": image.tag, DIGEST_KEY: image.digest}
    return Promotion(
        source=source,
        release=release,
        image=image,
        target=target,
        target_repository=target_repository,
        config=config,
        message=promotion_message(source, release.number, image, target_repository, target),
    )

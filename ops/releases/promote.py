"""``make promote FROM=dev TO=prod``: the action and how it is printed (the rules: ``ops.releases.promotion``).

The action refuses before anything changes (``Refusal``), then sets TO's
``imageTag`` and ``imageDigest`` and runs TO's update exactly as ``make up``
does (``ops.releases.command.up``: confirmation, the rollout's wait, the
automatic rollback of a failed rollout), with the provenance as its message.
In preview mode it runs TO's preview with that config instead, from a copy of
TO's stack config file, so nothing is written: not the config, not the state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pulumi import automation as auto

from ops import engine
from ops.preview.comment import render
from ops.preview.report import Preview
from ops.releases.command import Deployer, UpResult, print_up, up, validated
from ops.releases.model import AppVersionAt, Refusal, Release, releases
from ops.releases.promotion import (
    PromotedImage,
    Promotion,
    Resources,
    TagCommit,
    choose_release,
    image_of_release,
    plan_promotion,
    release_resources,
)
from project import config_key

#: (image, TO's imageRepository) -> None when TO can get the image, else why not. Injected in tests.
PromotionCheck = Callable[[PromotedImage, str], str | None]


class Source(Protocol):
    """What promotion reads from FROM."""

    @property
    def name(self) -> str:
        """The stack's name."""
        ...

    def history(self) -> list[auto.UpdateSummary]:
        """Every recorded operation of the stack, any order."""
        ...

    def resources(self) -> Resources:
        """The resources of the stack's current state."""
        ...

    def recorded_resources(self, release: Release) -> Resources | None:
        """The resources of the state ``release``'s update left, as the backend kept it; None if it kept none."""
        ...


class Target(Deployer, Protocol):
    """What promotion does to TO: a ``Deployer`` (whose config it sets), which it also previews with other config."""

    def preview_with(self, config: Mapping[str, str]) -> engine.Report:
        """Preview the stack as if ``config`` (short keys) were set, writing nothing."""
        ...


@dataclass(frozen=True)
class PromoteResult:
    """A promotion that was planned: its preview (preview mode) or its update, and TO's config before it."""

    promotion: Promotion
    previous: Mapping[str, str]
    preview: engine.Report | None = None
    update: UpResult | None = None


def promote(
    source: Source,
    target: Target,
    value: str | None,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    tag_commit: TagCommit,
    check: PromotionCheck | None,
    preview_only: bool,
    confirm: Callable[[], bool] | None,
    announce: Callable[[str], None] = print,
) -> PromoteResult:
    """Promote FROM's release ``value`` (None: its newest that succeeded) to TO; ``Refusal`` before any change.

    ``confirm`` is asked after TO's preview (None skips both); a declined
    promotion puts TO's config back as it was.
    """
    history = source.history()
    numbered = releases(history, app_version_at)
    release = choose_release(numbered, source.name, value, tag_commit)
    resources = release_resources(release, history, source.resources, source.recorded_resources)
    image = image_of_release(release, source.name, resources)
    repository = validated(target, app_version).image_repository
    promotion = plan_promotion(
        source=source.name, release=release, image=image, target=target.name, target_repository=repository
    )
    # The program would refuse it: say so now, with its words.
    validated(target, app_version, **promotion.config)
    if check is not None:
        problem = check(image, repository)
        if problem is not None:
            raise Refusal(problem)
    current = target.config()
    previous = {key: current.get(config_key(key), "") for key in promotion.config}
    announce(promotion.plan())
    if preview_only:
        return PromoteResult(promotion, previous, preview=target.preview_with(promotion.config))

    for key, setting in promotion.config.items():
        target.set_config(key, setting)
    result = up(
        target,
        app_version=app_version,
        app_version_at=app_version_at,
        confirm=confirm,
        message=promotion.message,
        announce=announce,
    )
    if result.declined:
        for key, setting in previous.items():
            target.set_config(key, setting)
    return PromoteResult(promotion, previous, update=result)


def preview_comment(result: PromoteResult, app_version: str) -> str:
    """The preview of TO with the promoted config, as the PR comment renders a preview, naming the provenance."""
    assert result.preview is not None
    promotion = result.promotion
    return render(promotion.target, Preview(result.preview), app_version, provenance=promotion.provenance)


def print_promote(result: PromoteResult, *, out: Path | None = None, app_version: str = "") -> int:
    """Print how the promotion went; its exit status.

    In preview mode, ``out`` (default None: none) receives TO's preview as a PR comment, which needs
    ``app_version`` (app/VERSION's) to tell a build from an existing tag.
    """
    promotion = result.promotion
    if result.preview is not None and out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(preview_comment(result, app_version), encoding="utf-8")
    if result.preview is not None:
        if result.preview.failed:
            print(f"error: the preview of {promotion.target} failed; see the output above.", file=sys.stderr)
            return 1
        print(
            f"Preview only: nothing was changed. `make promote FROM={promotion.source} TO={promotion.target} "
            f"REL={promotion.release.number}` promotes it."
        )
        return 0
    update = result.update
    assert update is not None
    if update.declined:
        print(f"promotion declined: {promotion.target}'s config is as it was; nothing was changed", file=sys.stderr)
        return 1
    status = print_up(update)
    if status == 0:
        print(
            f"Promoted {promotion.source} release {promotion.release.number} to {promotion.target}: "
            f"{promotion.target} runs {promotion.reference}.\n"
            f"  {promotion.message}"
        )
    return status

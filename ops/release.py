"""Releases a person can read and undo: ``history``, ``rollback`` and ``up`` with automatic rollback.

Usage (the make targets pass the stack)::

    python -m ops.release history  --stack dev [--json]
    python -m ops.release rollback --stack dev --to <release number or tag> [--no-image-check]
    python -m ops.release up       --stack dev [--yes] [--refresh] [--message TEXT]

Every subcommand drives the stack through the Automation API on the project
directory, so the program runs exactly as under ``pulumi up`` (the CLI's
Python language host, the project's ``.venv``). Releases are numbered from the
stack's update history (``ops.releases``).

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

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
from pulumi import automation as auto

from components.settings import APP_VERSION_TAG, Settings, StackConfig, load_settings
from components.values import registry_host
from ops.image_check import ImageCheck, check_image
from ops.releases import (
    IMAGE_TAG_KEY,
    AppVersionAt,
    PushRefusal,
    Refusal,
    Release,
    auto_rollback_target,
    push_refusal,
    release_message,
    releases,
    rollback_target,
    rollout_reason,
    running_release,
    table,
)
from project import APP_DIR, DEPLOYMENT_TYPE, IMAGE_TYPE, NAME, ROOT, VERSION_FILE, read_app_version

#: Entries per ``pulumi stack history`` page (the CLI's default page is 10, which would hide older releases).
HISTORY_PAGE_SIZE = 100
#: How to release again after an automatic rollback, in every such message.
RELEASE_AGAIN = (
    "To release again: fix the cause, then `pulumi config set imageTag <new tag>` "
    "(or `pulumi config rm imageTag` to deploy app/VERSION) and `make up`."
)


@dataclass(frozen=True)
class UpOutcome:
    """What one update did.

    ``deployment_errors`` are the error diagnostics the engine reported on the
    Deployment (a failed rollout); empty for a success and for any other failure.
    ``image_errors`` are those it reported on the image (a failed build or push).
    """

    succeeded: bool
    changes: Mapping[str, int] = field(default_factory=dict)
    deployment_errors: Sequence[str] = ()
    image_errors: Sequence[str] = ()


class Deployer(Protocol):
    """What the commands need from a stack. ``PulumiStack`` is the real one; tests pass a fake."""

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

    def preview(self) -> None:
        """Show what an update would change."""
        ...

    def up(self, message: str) -> UpOutcome:
        """Run the update with ``message``, streaming the engine's output; wait for the rollout."""
        ...


#: The steps that create or update a resource: only in these does a rollout or a build run. A refresh
#: (``refresh: always`` in Pulumi.yaml) reads the Deployment first, with progress lines of its own.
_CHANGE_OPS = frozenset({auto.OpType.CREATE, auto.OpType.UPDATE, auto.OpType.REPLACE, auto.OpType.CREATE_REPLACEMENT})


def _changed_urn(event: auto.EngineEvent, type_token: str) -> str | None:
    """The URN of a resource of ``type_token`` whose create or update step starts with ``event``, else None."""
    pre = event.resource_pre_event
    if pre is None or pre.metadata.type != type_token:
        return None
    # The op is an OpType member or, as parsed from JSON, its plain string value.
    return pre.metadata.urn if auto.OpType(pre.metadata.op) in _CHANGE_OPS else None


class _DeploymentErrors:
    """An ``on_event`` callback that keeps what the engine reported on a Deployment's create or update (its
    rollout): its error diagnostics, then its progress lines (which carry Kubernetes' verdict on the rollout).
    What the refresh before reported is not kept: it is no rollout."""

    def __init__(self) -> None:
        self._urns: set[str] = set()
        self._failures: list[str] = []
        self._progress: list[str] = []

    @property
    def errors(self) -> list[str]:
        return [*self._failures, *self._progress]

    def __call__(self, event: auto.EngineEvent) -> None:
        urn = _changed_urn(event, DEPLOYMENT_TYPE)
        if urn is not None:
            self._urns.add(urn)
        diagnostic = event.diagnostic_event
        if diagnostic is None or diagnostic.urn not in self._urns:
            return
        if diagnostic.severity == "error":
            self._failures.append(diagnostic.message)
        elif diagnostic.ephemeral:
            self._progress.append(diagnostic.message)


class _ErrorsOn:
    """An ``on_event`` callback that keeps the error diagnostics of the create or update of resources of one type."""

    def __init__(self, type_token: str) -> None:
        self._type = type_token
        self._urns: set[str] = set()
        self.errors: list[str] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        urn = _changed_urn(event, self._type)
        if urn is not None:
            self._urns.add(urn)
        diagnostic = event.diagnostic_event
        if diagnostic is not None and diagnostic.urn in self._urns and diagnostic.severity == "error":
            self.errors.append(diagnostic.message)


def _print_error(line: str) -> None:
    # The CLI's stderr: its own errors (a missing plugin, a locked stack) are not in the engine's output.
    print(line, file=sys.stderr)


class PulumiStack:
    """A stack of the project directory, through the Automation API (a local program, not inline)."""

    def __init__(self, stack: auto.Stack, *, refresh: bool = False) -> None:
        self._stack = stack
        self._refresh = refresh or None

    @classmethod
    def open(cls, name: str, *, create: bool, refresh: bool = False) -> PulumiStack:
        """Select the stack (or create it, for ``up``); raises ``Refusal`` when it does not exist."""
        if create:
            stack = auto.create_or_select_stack(stack_name=name, work_dir=str(ROOT))
            return cls(stack, refresh=refresh)
        try:
            stack = auto.select_stack(stack_name=name, work_dir=str(ROOT))
        except auto.StackNotFoundError:
            raise Refusal(f"there is no stack {name!r} in this backend; `make up STACK={name}` creates it") from None
        return cls(stack, refresh=refresh)

    @property
    def name(self) -> str:
        return self._stack.name

    def history(self) -> list[auto.UpdateSummary]:
        # `pulumi stack history` returns 10 entries unless asked for pages: read them all, or the numbers would shift.
        found: list[auto.UpdateSummary] = []
        page = 1
        while True:
            entries = self._stack.history(page_size=HISTORY_PAGE_SIZE, page=page)
            found.extend(entries)
            if len(entries) < HISTORY_PAGE_SIZE:
                return found
            page += 1

    def config(self) -> dict[str, str]:
        # `pulumi config --json` lists Pulumi.yaml's declared defaults too, so this is the program's view.
        return {key: value.value for key, value in self._stack.get_all_config().items()}

    def set_image_tag(self, tag: str) -> None:
        self._stack.set_config("imageTag", auto.ConfigValue(tag))

    def preview(self) -> None:
        self._stack.preview(on_output=print, on_error=_print_error, diff=True, refresh=self._refresh)

    def up(self, message: str) -> UpOutcome:
        errors = _DeploymentErrors()
        image_errors = _ErrorsOn(IMAGE_TYPE)

        def on_event(event: auto.EngineEvent) -> None:
            errors(event)
            image_errors(event)

        try:
            result = self._stack.up(
                on_output=print, on_error=_print_error, on_event=on_event, refresh=self._refresh, message=message
            )
        except auto.CommandError:
            # The engine's own account of the failure was streamed above.
            return UpOutcome(False, deployment_errors=errors.errors, image_errors=image_errors.errors)
        # The keys are OpType members or, as parsed from JSON, their plain string values.
        changes = {auto.OpType(op).value: count for op, count in (result.summary.resource_changes or {}).items()}
        return UpOutcome(True, changes)


def git_app_version_at(commit: str) -> str | None:
    """``app/VERSION`` as committed at ``commit`` in the project's git repository, or None."""
    try:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:{APP_DIR}/{VERSION_FILE}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return None
    version = shown.stdout.strip()
    return version if shown.returncode == 0 and version else None


def validated(deployer: Deployer, app_version: str, **overrides: str) -> Settings:
    """The stack's settings, with ``overrides`` (short keys), validated as the program does; ``Refusal`` if bad."""
    values = {**deployer.config(), **{f"{NAME}:{key}": value for key, value in overrides.items()}}
    try:
        return load_settings(StackConfig(NAME, values), project=NAME, stack=deployer.name, app_version=app_version)
    except pulumi.RunError as error:
        raise Refusal(str(error)) from None


def _changes(changes: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {op}" for op, count in sorted(changes.items())) or "none"


def history_command(deployer: Deployer, app_version_at: AppVersionAt, *, as_json: bool) -> int:
    """Print the releases, newest first: a table, or JSON for scripts."""
    numbered = releases(deployer.history(), app_version_at)
    if as_json:
        print(json.dumps([r.as_json() for r in reversed(numbered)], indent=2))
    elif numbered:
        print(table(numbered))
    else:
        print(f"stack {deployer.name} has no release yet: `make up` makes the first")
    return 0


def rollback_command(
    deployer: Deployer, value: str, *, app_version: str, app_version_at: AppVersionAt, check: ImageCheck | None
) -> int:
    """Deploy the tag of release ``value`` (or the tag ``value``); ``Refusal`` before anything changes."""
    history = deployer.history()
    numbered = releases(history, app_version_at)
    target = rollback_target(value, numbered, running_release(history, numbered))
    current = deployer.config().get(IMAGE_TAG_KEY, APP_VERSION_TAG)
    settings = validated(deployer, app_version, imageTag=target.tag)
    if check is not None:
        problem = check(settings.image_repository, target.tag)
        if problem is not None:
            raise Refusal(problem)

    origin = f" (release {target.release.number})" if target.release else ""
    print(f"Rolling back stack {deployer.name} to {settings.image_repository}:{target.tag}{origin}")
    action = f"rollback to release {target.release.number}" if target.release else "rollback to tag"
    deployer.set_image_tag(target.tag)
    outcome = deployer.up(release_message(action, settings.image_repository, target.tag, deployer.name))
    new_release = len(numbered) + 1
    config_change = f"imageTag: {current} -> {target.tag}"
    if not outcome.succeeded:
        reason = rollout_reason(outcome.deployment_errors) if outcome.deployment_errors else "see the output above"
        print(
            f"error: the rollback to {target.tag} failed (release {new_release}): {reason}\n"
            f"{config_change} stays set; the cluster is as Kubernetes left it.",
            file=sys.stderr,
        )
        return 1
    print(
        f"Rolled back stack {deployer.name} to tag {target.tag}{origin}, recorded as release {new_release}.\n"
        f"  {config_change}\n"
        f"  resources: {_changes(outcome.changes)}"
    )
    return 0


def _push_refused_message(settings: Settings, refused: PushRefusal) -> str:
    """The push failed: the registry, the image, why; and that the Deployment was not changed (it needs the digest)."""
    image = f"{settings.image_repository}:{settings.image_tag}"
    hint = f"\n{refused.hint}" if refused.hint else ""
    return (
        f"error: the push of {image} to {registry_host(settings.image_repository)} failed: {refused.reason}{hint}\n"
        "The Deployment was not changed: it still runs the image it ran before. "
        "Run `make up` again once the registry accepts the push."
    )


def _failed_rollout_message(failed: str, reason: str, what_now: str) -> str:
    return f"error: {failed} failed: {reason}\n{what_now}"


def up_command(
    deployer: Deployer,
    *,
    app_version: str,
    app_version_at: AppVersionAt,
    confirm: Callable[[], bool] | None,
    message: str | None = None,
) -> int:
    """``pulumi up``, then, on a failed rollout with ``rollbackOnFailure``, one rollback to the last good tag.

    ``confirm`` is asked after the preview; None skips both (``--yes``).
    ``message`` is the update's; by default the Deployment's change-cause, which names the image.
    """
    settings = validated(deployer, app_version)
    before = releases(deployer.history(), app_version_at)
    if confirm is not None:
        deployer.preview()
        if not confirm():
            print("update declined: nothing was changed", file=sys.stderr)
            return 1
    outcome = deployer.up(message or settings.change_cause)
    if outcome.succeeded:
        return 0
    if not outcome.deployment_errors:
        refused = push_refusal(outcome.image_errors, registry_host(settings.image_repository) or "")
        if refused is not None:
            print(_push_refused_message(settings, refused), file=sys.stderr)
        # Otherwise not a rollout: bad config, a program error, an unreachable cluster; the engine said which above.
        return 1

    failed = f"release {len(before) + 1} (tag {settings.image_tag})"
    reason = rollout_reason(outcome.deployment_errors)
    if not settings.rollback_on_failure:
        print(
            _failed_rollout_message(
                failed,
                reason,
                "rollbackOnFailure is false: nothing was rolled back, the cluster is as Kubernetes left it. "
                "Roll back with `make rollback TO=<release or tag>` (see `make history`).",
            ),
            file=sys.stderr,
        )
        return 1
    decision = auto_rollback_target(before, settings.image_tag)
    if decision.release is None or decision.release.image_tag is None:
        print(_failed_rollout_message(failed, reason, f"Not rolled back: {decision.why_not}."), file=sys.stderr)
        return 1
    return _roll_back_once(
        deployer,
        settings.image_repository,
        failed=failed,
        reason=reason,
        last=decision.release,
        tag=decision.release.image_tag,
        number=len(before) + 2,
    )


def _roll_back_once(
    deployer: Deployer, repository: str, *, failed: str, reason: str, last: Release, tag: str, number: int
) -> int:
    """Deploy ``tag`` (of release ``last``) again after a failed rollout, as release ``number``; one attempt only."""
    print(f"\nThe rollout of {failed} failed; rolling back to release {last.number} (tag {tag}).\n")
    deployer.set_image_tag(tag)
    action = f"automatic rollback to release {last.number} after {failed} failed"
    rollback = deployer.up(release_message(action, repository, tag, deployer.name))
    if rollback.succeeded:
        what_now = (
            f"Rolled back to release {last.number} (tag {tag}), recorded as release {number}: "
            f"the rollout completed and imageTag is now {tag}.\n{RELEASE_AGAIN}"
        )
    else:
        again = rollout_reason(rollback.deployment_errors) if rollback.deployment_errors else "see the output above"
        what_now = (
            f"The rollback to release {last.number} (tag {tag}) failed too (release {number}): {again}\n"
            f"Nothing more was tried: the cluster is as Kubernetes left it, and imageTag is {tag}. "
            "Inspect it with `kubectl rollout status`, then `make rollback TO=<release or tag>`."
        )
    print(_failed_rollout_message(failed, reason, what_now), file=sys.stderr)
    return 1


def ask_terminal() -> bool:
    """Ask on the terminal whether to perform the update."""
    return input("Do you want to perform this update? [y/N] ").strip().lower() in ("y", "yes")


def parser() -> argparse.ArgumentParser:
    """The command line: three subcommands, each with ``--stack``."""
    top = argparse.ArgumentParser(prog="python -m ops.release", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    history = commands.add_parser("history", help="the stack's releases, newest first")
    history.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    rollback = commands.add_parser("rollback", help="deploy the tag of a release, or a tag")
    rollback.add_argument("--to", required=True, help="a release number (make history) or an image tag")
    rollback.add_argument(
        "--no-image-check",
        action="store_true",
        help="skip checking that the tag exists in the registry or the local Docker engine",
    )
    up = commands.add_parser("up", help="pulumi up, with automatic rollback when the rollout fails")
    up.add_argument("--yes", "-y", action="store_true", help="skip the preview and confirmation")
    up.add_argument("--refresh", action="store_true", help="refresh the state from the cluster first")
    up.add_argument("--message", "-m", help="the update's message (default: the change-cause, naming the image)")
    for command in (history, rollback, up):
        command.add_argument("--stack", default="dev", help="the stack (default: dev)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = parser().parse_args(argv)
    app_version = read_app_version()
    try:
        if args.command == "history":
            return history_command(PulumiStack.open(args.stack, create=False), git_app_version_at, as_json=args.json)
        if args.command == "rollback":
            return rollback_command(
                PulumiStack.open(args.stack, create=False),
                args.to,
                app_version=app_version,
                app_version_at=git_app_version_at,
                check=None if args.no_image_check else check_image,
            )
        if not args.yes and not sys.stdin.isatty():
            # As `pulumi up` does without a terminal: refuse before anything runs.
            raise Refusal("no terminal to confirm the update on; pass --yes (make up ARGS=--yes)")
        deployer = PulumiStack.open(args.stack, create=True, refresh=args.refresh)
        return up_command(
            deployer,
            app_version=app_version,
            app_version_at=git_app_version_at,
            confirm=None if args.yes else ask_terminal,
            message=args.message,
        )
    except Refusal as refusal:
        print(f"error: {refusal}\nNothing was changed.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

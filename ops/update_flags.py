"""The flags ``make up`` takes (``ARGS=…``): Pulumi's own ``pulumi up`` flags, with the same meaning, and ``--yes``.

``make up ARGS=--help`` lists them. Each is passed to the engine through the
Automation API (``Stack.up`` and ``Stack.preview`` keyword arguments, see
``UpdateFlags.up_kwargs``). A flag it cannot honour is refused by name before
anything runs, with the reason and what to use instead (``Refused``).

Standard library only: the pre-flight validates ``ARGS`` with it before the
venv's install, so a mistyped flag costs milliseconds and changes nothing.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

#: ``pulumi up`` flags that ``make up`` cannot pass on, and why; what to use instead.
UNSUPPORTED = {
    "--stack": "make up takes the stack as STACK=<name>",
    "-s": "make up takes the stack as STACK=<name>",
    "--refresh=false": (
        "the Automation API can only add --refresh, so Pulumi.yaml's `refresh: always` applies; "
        "run `pulumi up --refresh=false` to skip the refresh once"
    ),
    "--plan": "make up runs the update it previews; `pulumi up --plan <file>` applies a saved plan",
}

#: The way forward after a refusal: where the flags it takes are listed.
HELP = "`make up ARGS=--help` lists the flags it takes"


class Refused(ValueError):
    """A flag ``make up`` cannot honour, named, with the reason."""


@dataclass(frozen=True, kw_only=True)
class UpdateFlags:
    """Pulumi's update flags as ``make up`` received them; each default is Pulumi's own (off, or none).

    ``yes`` (``--yes``): no preview and no confirmation (``pulumi up --yes --skip-preview``).
    ``skip_preview`` (``--skip-preview``): as in ``pulumi up``: no preview, so nothing to confirm.
    ``parallel``: how many resource operations run at once; None is Pulumi's default.
    """

    yes: bool = False
    skip_preview: bool = False
    diff: bool = False
    refresh: bool = False
    message: str | None = None
    target: tuple[str, ...] = ()
    target_dependents: bool = False
    exclude: tuple[str, ...] = ()
    exclude_dependents: bool = False
    replace: tuple[str, ...] = ()
    parallel: int | None = None
    expect_no_changes: bool = False
    policy_packs: tuple[str, ...] = ()
    policy_pack_configs: tuple[str, ...] = ()
    continue_on_error: bool = False

    @property
    def confirm(self) -> bool:
        """Whether ``make up`` previews and asks before the update: unless ``--yes`` or ``--skip-preview``."""
        return not (self.yes or self.skip_preview)

    def preview_kwargs(self) -> dict[str, Any]:
        """``Stack.preview`` keyword arguments: what the update will do, as the update will do it."""
        return {
            "diff": self.diff or None,
            "refresh": self.refresh or None,
            "target": list(self.target) or None,
            "target_dependents": self.target_dependents or None,
            "exclude": list(self.exclude) or None,
            "exclude_dependents": self.exclude_dependents or None,
            "replace": list(self.replace) or None,
            "parallel": self.parallel,
            "expect_no_changes": self.expect_no_changes or None,
            "policy_packs": list(self.policy_packs) or None,
            "policy_pack_configs": list(self.policy_pack_configs) or None,
        }

    def up_kwargs(self) -> dict[str, Any]:
        """``Stack.up`` keyword arguments (the message is the command's, passed apart)."""
        return {**self.preview_kwargs(), "continue_on_error": self.continue_on_error or None}

    def for_rollback(self) -> UpdateFlags:
        """The flags of an automatic rollback: the whole stack again, so no target, exclude or replace."""
        return UpdateFlags(yes=True, diff=self.diff, refresh=self.refresh, parallel=self.parallel)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _refresh(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        raise argparse.ArgumentTypeError(UNSUPPORTED["--refresh=false"])
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


def add_update_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags to ``parser``, with Pulumi's names, short forms and help."""
    flag = parser.add_argument
    flag("--yes", "-y", action="store_true", help="no preview and no confirmation (pulumi up --yes --skip-preview)")
    flag("--skip-preview", "-f", action="store_true", help="do not preview before the update (so nothing to confirm)")
    flag("--diff", action="store_true", help="show each resource's diff in the preview and the update")
    flag(
        "--refresh",
        "-r",
        nargs="?",
        const=True,
        default=False,
        type=_refresh,
        metavar="true",
        help="refresh the state from the cluster first (Pulumi.yaml sets refresh: always already)",
    )
    flag("--message", "-m", help="the update's message (default: the change-cause, naming the image)")
    flag("--target", "-t", action="append", default=[], metavar="URN", help="update only this resource (repeatable)")
    flag("--target-dependents", action="store_true", help="also update the targets' dependents")
    flag("--exclude", action="append", default=[], metavar="URN", help="do not update this resource (repeatable)")
    flag("--exclude-dependents", action="store_true", help="also leave the excluded resources' dependents alone")
    flag("--replace", action="append", default=[], metavar="URN", help="replace this resource (repeatable)")
    flag("--parallel", "-p", type=_positive, metavar="N", help="resource operations at once (Pulumi's default)")
    flag("--expect-no-changes", action="store_true", help="fail if the update would change anything")
    flag("--policy-pack", action="append", default=[], metavar="DIR", help="run this policy pack (repeatable)")
    flag("--policy-pack-config", action="append", default=[], metavar="FILE", help="a policy pack's config file")
    flag("--continue-on-error", action="store_true", help="carry on with independent resources after an error")
    # make up's own: its result, not the engine's events (``pulumi up --json`` prints those).
    flag(
        "--json",
        action="store_true",
        help="print make up's result as JSON on stdout (a failed rollout's diagnosis included); the engine's "
        "display goes to stderr",
    )
    flag("--out", metavar="FILE", help="also write that JSON to FILE (make up OUT=<file.json>)")


def flags_from(args: argparse.Namespace) -> UpdateFlags:
    """The parsed flags as ``UpdateFlags``."""
    return UpdateFlags(
        yes=args.yes,
        skip_preview=args.skip_preview,
        diff=args.diff,
        refresh=args.refresh,
        message=args.message,
        target=tuple(args.target),
        target_dependents=args.target_dependents,
        exclude=tuple(args.exclude),
        exclude_dependents=args.exclude_dependents,
        replace=tuple(args.replace),
        parallel=args.parallel,
        expect_no_changes=args.expect_no_changes,
        policy_packs=tuple(args.policy_pack),
        policy_pack_configs=tuple(args.policy_pack_config),
        continue_on_error=args.continue_on_error,
    )


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises ``Refused`` instead of exiting, so the caller words the refusal."""

    def error(self, message: str) -> None:  # type: ignore[override]  # raises instead of exiting
        raise Refused(f"make up cannot take these flags: {message}")


def _unsupported(arg: str) -> str | None:
    name, _, value = arg.partition("=")
    if name in ("--refresh", "-r") and value.lower() in ("false", "0"):
        return UNSUPPORTED["--refresh=false"]
    return UNSUPPORTED.get(name)


def refusal(unknown: list[str]) -> Refused:
    """Why ``unknown`` (arguments no flag took) is refused: a known ``pulumi up`` flag's reason, or that it is none."""
    for arg in unknown:
        reason = _unsupported(arg) if arg.startswith("-") else None
        if reason is not None:
            return Refused(f"make up cannot pass {arg} on: {reason}")
    return Refused(f"make up cannot pass {' '.join(unknown)} on: not a pulumi up flag it takes")


def parse(argv: list[str]) -> UpdateFlags:
    """``ARGS`` of ``make up`` as ``UpdateFlags``; ``Refused`` naming the first flag it cannot honour."""
    unsupported = [arg for arg in argv if arg.startswith("-") and _unsupported(arg) is not None]
    if unsupported:
        raise refusal(unsupported)
    parser = _Parser(prog="make up ARGS=", add_help=False)
    add_update_flags(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise refusal(unknown)
    return flags_from(args)

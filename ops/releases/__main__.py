"""``python -m ops.releases``: a stack's releases, its rollback, and ``up`` with automatic rollback.

Usage (the make targets pass the stack)::

    python -m ops.releases history  --stack dev [--json]
    python -m ops.releases rollback --stack dev --to <release number or tag> [--no-image-check]
    python -m ops.releases up       --stack dev [pulumi up's flags: --yes, --skip-preview, --diff, --target URN,
                                                 --parallel N, --refresh, --message TEXT... (up --help)]
                                                [--json] [--out FILE]
    python -m ops.releases promote  --from dev --to prod [--release <number or git tag>] [--preview [--out FILE]]
                                    [--yes] [--no-image-check] [--result FILE]

Exit status: 0 done, 1 the update failed or was declined, 2 refused before anything changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops import engine, update_flags
from ops.image_check import check_image
from ops.releases.command import (
    PulumiStack,
    git_app_version_at,
    git_tag_commit,
    history_command,
    rollback_command,
    up_command,
    up_json,
    write_json,
)
from ops.releases.model import Refusal
from ops.releases.promote import print_promote, promote
from ops.releases.promotion import check_stacks, promoted_image_problem
from ops.update_flags import add_update_flags
from project import read_app_version


def ask_terminal() -> bool:
    """Ask on the terminal whether to perform the update."""
    return input("Do you want to perform this update? [y/N] ").strip().lower() in ("y", "yes")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    """The command line: ``history``, ``rollback`` and ``up``, each with ``--stack``; ``promote`` with two stacks."""
    top = argparse.ArgumentParser(prog="python -m ops.releases", description=__doc__.splitlines()[0])
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
    up = commands.add_parser(
        "up",
        help="pulumi up, with automatic rollback when the rollout fails",
        description="pulumi up, with automatic rollback when the rollout fails. It takes pulumi up's own flags below, "
        "with their meaning in pulumi up (--yes also skips the preview); any other flag is refused by name.",
    )
    add_update_flags(up)
    for command in (history, rollback, up):
        command.add_argument("--stack", default="dev", help="the stack (default: dev)")
    promote_parser = commands.add_parser("promote", help="deploy to one stack exactly the image of another's release")
    promote_parser.add_argument("--from", dest="source", required=True, help="the stack whose release is promoted")
    promote_parser.add_argument("--to", dest="target", required=True, help="the stack that gets it")
    promote_parser.add_argument(
        "--release", help="a release number of --from, or a git tag (default: its newest release that succeeded)"
    )
    promote_parser.add_argument(
        "--preview", action="store_true", help="print the plan and --to's preview; change nothing"
    )
    promote_parser.add_argument("--out", type=Path, help="with --preview: write --to's preview as a PR comment here")
    promote_parser.add_argument("--yes", "-y", action="store_true", help="skip the preview and the confirmation")
    promote_parser.add_argument(
        "--result", type=Path, help="write the update's result as JSON here, as make up's OUT= (make promote RESULT=)"
    )
    promote_parser.add_argument(
        "--no-image-check",
        action="store_true",
        help="skip checking that --to's registry (or Docker engine) has exactly the image",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown and args.command != "up":
        top.error(f"unrecognized arguments: {' '.join(unknown)}")
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
        if args.command == "promote":
            return _promote(args, app_version)
        if unknown:
            # What no flag took, named, as make up's pre-flight names it.
            raise update_flags.refusal(unknown)
        flags = update_flags.flags_from(args)
        if flags.confirm and not sys.stdin.isatty():
            # As `pulumi up` does without a terminal: refuse before anything runs.
            raise Refusal("no terminal to confirm the update on; pass --yes or --skip-preview (make up ARGS=--yes)")
        output = _stderr if args.json else print
        deployer = PulumiStack.open(args.stack, create=True, flags=flags, output=output)
        return up_command(
            deployer,
            app_version=app_version,
            app_version_at=git_app_version_at,
            confirm=ask_terminal if flags.confirm else None,
            message=flags.message,
            as_json=args.json,
            out=Path(args.out) if args.out else None,
        )
    except update_flags.Refused as refused:
        print(f"error: {refused}; {update_flags.HELP}\nNothing was changed.", file=sys.stderr)
        return 2
    except Refusal as refusal:
        print(f"error: {refusal}\nNothing was changed.", file=sys.stderr)
        return 2


def _promote(args: argparse.Namespace, app_version: str) -> int:
    """``make promote``: refused before anything changes unless both stacks exist and differ."""
    if args.out is not None and not args.preview:
        raise Refusal("--out writes the preview's comment: it goes with --preview (make promote PREVIEW=1 OUT=...)")
    check_stacks(args.source, args.target, engine.stack_names())
    if not (args.yes or args.preview) and not sys.stdin.isatty():
        raise Refusal("no terminal to confirm the promotion on; pass --yes (make promote ARGS=--yes), or PREVIEW=1")
    result = promote(
        PulumiStack.open(args.source, create=False),
        PulumiStack.open(args.target, create=False),
        args.release,
        app_version=app_version,
        app_version_at=git_app_version_at,
        tag_commit=git_tag_commit,
        check=None if args.no_image_check else promoted_image_problem,
        preview_only=args.preview,
        confirm=None if args.yes else ask_terminal,
    )
    status = print_promote(result, out=args.out, app_version=app_version)
    if args.result is not None and result.update is not None:
        write_json(args.result, up_json(result.update, args.target, status))
    return status


if __name__ == "__main__":
    sys.exit(main())

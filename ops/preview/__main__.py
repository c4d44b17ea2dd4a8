"""``python -m ops.preview``: write a stack's pull-request comment, from a preview it runs or from recorded events.

Usage::

    python -m ops.preview --stack dev --out build/pr-comment/dev.md [--policy-pack policy]
    python -m ops.preview --stack dev --out comment.md --events preview.events.jsonl

Without ``--events`` it runs the stack's preview through the engine
(``ops.engine.preview``, with a refresh first and the policy pack). With it,
it renders engine events recorded before (one JSON event per line, as
``tools/capture_engine_events.py`` writes them). Exit status: 0 when the
preview succeeded, 2 when it failed (the comment says why), 1 when no comment
could be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ops import engine
from ops.preview.comment import render
from ops.preview.report import Preview
from project import ROOT, read_app_version


def run_preview(stack: str, policy_pack: str | None, project_dir: Path) -> Preview:
    """The stack's preview with a refresh first (what the cluster runs now) and ``policy_pack``."""
    try:
        opened = engine.open_stack(stack, create=False, work_dir=project_dir)
    except engine.NoSuchStack:
        return Preview(engine.Report(command_failed=True, stderr=f"error: there is no stack {stack!r} in this backend"))
    packs = [policy_pack] if policy_pack else []
    return Preview(engine.preview(opened, refresh=True, policy_packs=packs))


def recorded_preview(path: Path) -> Preview:
    """A preview from recorded engine events."""
    return Preview(engine.report_from_events(engine.read_events(path.read_text(encoding="utf-8").splitlines())))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="python -m ops.preview", description=__doc__.splitlines()[0])
    top.add_argument("--stack", required=True, help="the stack previewed (names the comment's marker)")
    top.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    top.add_argument("--events", type=Path, help="render these recorded engine events (JSON lines) instead")
    top.add_argument("--policy-pack", help="without --events: run the preview with this policy pack")
    top.add_argument(
        "--project-dir", type=Path, default=ROOT, help="the project directory (default: the project of ops/)"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 passed, 2 preview failed, 1 no comment)."""
    top = parser()
    args = top.parse_args(argv)
    if args.events is not None and args.policy_pack is not None:
        top.error("--policy-pack runs a preview; --events renders one that ran already")
    try:
        app_version = read_app_version(args.project_dir)
    except OSError as error:
        print(f"pr-comment: cannot read the app's version (--project-dir {args.project_dir}): {error}", file=sys.stderr)
        return 1
    if args.events is not None:
        try:
            preview = recorded_preview(args.events)
        except (OSError, json.JSONDecodeError) as error:
            print(f"pr-comment: cannot read the events: {error}", file=sys.stderr)
            return 1
    else:
        preview = run_preview(args.stack, args.policy_pack, args.project_dir)
    comment = render(args.stack, preview, app_version)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(comment, encoding="utf-8")
    print(f"{args.stack}: {len(comment)} characters in {args.out}" + (" (preview failed)" if preview.failed else ""))
    if preview.failed:
        # The comment shows the first lines of the error; the job log gets all of it.
        print(failure_text(preview), file=sys.stderr)
    return 2 if preview.failed else 0


def failure_text(preview: Preview) -> str:
    """Why the preview failed, in full: its error messages, else the CLI's own error output."""
    text = "\n".join(item.text.rstrip() for item in preview.errors).strip()
    return text or preview.report.stderr.strip() or "(no error message)"


if __name__ == "__main__":
    sys.exit(main())

"""``make drift STACK=…``: has the cluster drifted from the stack's last update? The verdict and its exit code.

The check is a refreshing preview that writes no state: it reads every
resource from the cluster and compares it with the last update, as the PR
comment's drift section does, and prints that same section. The exit code
tells the three outcomes apart, so a scheduled job can act on each:

- 0: no drift, the cluster matches the last update;
- 1: drift: each drifted field, its value in the cluster, in the last update and in config;
- 2: the check itself failed (the cluster or the backend unreachable, config the program refuses,
  a locked stack): nothing can be said about drift.

An error wins over drift: a preview that failed may have read only part of the cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ops.preview.__main__ import run_preview
from ops.preview.comment import drift_section
from ops.preview.report import Preview
from project import ROOT

#: Exit codes of ``make drift``.
NO_DRIFT = 0
DRIFT = 1
ERROR = 2


def exit_code(*, failed: bool, drifted: int) -> int:
    """2 when the check failed, else 1 when ``drifted`` (resources found changed) is not zero, else 0."""
    if failed:
        return ERROR
    return DRIFT if drifted else NO_DRIFT


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """The outcome of one stack's drift check.

    ``section`` is the PR comment's drift section (Markdown lines); ``errors``
    what made the check fail (the engine's error diagnostics and the CLI's own
    error output), empty when it did not.
    """

    stack: str
    drifted: int
    section: Sequence[str]
    errors: Sequence[str] = ()

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def exit_code(self) -> int:
        return exit_code(failed=self.failed, drifted=self.drifted)

    def text(self) -> str:
        """What ``make drift`` prints: a verdict line, then the drift section, or what failed."""
        if self.failed:
            lines = [f"{self.stack}: the drift check failed, so drift is unknown:", ""]
            lines += [f"  {line}" for error in self.errors for line in error.strip().splitlines()]
            if self.drifted:
                lines += ["", "What it read before it failed:", "", *self.section]
            return "\n".join(lines)
        if not self.drifted:
            return f"{self.stack}: no drift: the cluster matches the last update."
        verdict = (
            f"{self.stack}: drift in {self.drifted} resource(s): the next `make up STACK={self.stack}` "
            "puts back what config says; to keep a change, write it into config first."
        )
        return "\n".join([verdict, "", *self.section])


# ---------------------------------------------------------------------------
# The command


def judge(stack: str, preview: Preview) -> DriftReport:
    """The verdict on one refreshing preview: what drifted, the PR comment's drift section, what failed."""
    errors = [item.message for item in preview.errors]
    if preview.failed and not errors:
        errors = [preview.report.stderr.strip() or "the preview failed and the engine said nothing"]
    drifted = preview.drift()
    return DriftReport(stack=stack, drifted=len(drifted), section=drift_section(preview), errors=errors)


def check(stack: str, project_dir: Path) -> DriftReport:
    """Run the stack's refreshing preview (which writes no state) and judge it."""
    return judge(stack, run_preview(stack, None, project_dir))


def as_json(report: DriftReport) -> dict[str, object]:
    """The verdict for scripts (``OUT=``): the stack, the exit code and the Markdown text."""
    return {"stack": report.stack, "exitCode": report.exit_code, "drifted": report.drifted, "markdown": report.text()}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code (0 no drift, 1 drift, 2 the check failed)."""
    parser = argparse.ArgumentParser(prog="python -m ops.drift", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack to check")
    parser.add_argument("--out", type=Path, help="also write the verdict as JSON (stack, exitCode, markdown)")
    args = parser.parse_args(argv)
    try:
        report = check(args.stack, ROOT)
    except FileNotFoundError:
        report = DriftReport(stack=args.stack, drifted=0, section=(), errors=["the pulumi CLI is not on PATH"])
    print(report.text(), file=sys.stderr if report.failed else sys.stdout)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(as_json(report), indent=2) + "\n", encoding="utf-8")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

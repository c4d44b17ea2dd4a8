"""``python -m ops.releases.summary <result.json>``: ``make up``'s JSON result as Markdown, for a job's summary.

The deploy workflows append it to ``$GITHUB_STEP_SUMMARY``, so a reviewer without
access to the cluster reads what failed and why: the verdict, each cause of the
diagnosis with its pods, sample pod and Kubernetes' message, a crash's last log
lines (as the container wrote them), and what was rolled back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _cell(text: object) -> str:
    """One Markdown table cell: one line, its pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _causes(diagnosis: Mapping[str, Any] | None) -> list[str]:
    if not diagnosis:
        return []
    lines: list[str] = []
    causes: Sequence[Mapping[str, Any]] = diagnosis.get("causes") or []
    if causes:
        lines += [
            "| cause | pods | sample pod | stops the update | Kubernetes' message |",
            "|---|---|---|---|---|",
        ]
        for cause in causes:
            name = cause["cause"]
            if cause.get("exitCode") is not None:
                name += f" (exit code {cause['exitCode']}, {cause.get('reason') or '?'})"
            lines.append(
                f"| {_cell(name)} | {cause['pods']} | {_cell(cause.get('samplePod') or '-')} | "
                f"{'yes' if cause['terminal'] else 'no'} | {_cell(cause.get('message') or '')} |"
            )
        for cause in causes:
            if cause.get("log"):
                lines += [
                    "",
                    f"<details><summary>Last {len(cause['log'])} log lines of {cause['samplePod']}</summary>",
                    "",
                    "```text",
                    *cause["log"],
                    "```",
                    "</details>",
                ]
    elif diagnosis.get("replicaSet"):
        lines.append(f"The new pods (ReplicaSet {diagnosis['replicaSet']}) showed no cause.")
    lines += [f"- not read: the cluster refused `{permission}`" for permission in diagnosis.get("refused") or []]
    return lines


def markdown(result: Mapping[str, Any]) -> str:
    """The summary of one ``make up`` (``up_json``)."""
    title = f"### make up, stack {result['stack']}, tag {result['imageTag']}: {result['result']}"
    if result["result"] == "succeeded":
        return title + "\n"
    lines = [title, ""]
    update = result.get("update") or {}
    if result.get("failedRelease"):
        stopped = " (stopped early: waiting could not fix it)" if update.get("stopped") else ""
        lines += [f"**{result['failedRelease']} failed**{stopped}: {_cell(update.get('verdict', ''))}", ""]
    lines += _causes(update.get("diagnosis"))
    rollback = result.get("rollback")
    if rollback:
        outcome = "completed" if rollback.get("succeeded") else f"failed too: {_cell(rollback.get('verdict', ''))}"
        lines += [
            "",
            f"Rolled back to release {rollback['toRelease']} (tag {rollback['tag']}), "
            f"recorded as release {rollback['release']}: {outcome}.",
        ]
        if not rollback.get("succeeded"):
            lines += ["", *_causes(rollback.get("diagnosis"))]
    elif result.get("notRolledBack"):
        lines += ["", f"Not rolled back: {_cell(result['notRolledBack'])}."]
    if result.get("error"):
        lines += ["", "```text", result["error"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the result file named on the command line; 2 when it cannot be read."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ops.releases.summary <result.json>", file=sys.stderr)
        return 2
    try:
        result = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"error: cannot read make up's result {args[0]}: {error}", file=sys.stderr)
        return 2
    print(markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

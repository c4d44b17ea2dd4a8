"""Extract every ``run:`` block of the GitHub workflows and composite actions as a shell script.

shellcheck reads shell files, not YAML: this writes each block to
``<out>/<file>--<job>--<step>.sh`` so a finding names where the block lives.
GitHub expressions (``${{ ... }}``) are replaced by a placeholder word first,
since the runner substitutes them before the shell ever runs.

Usage: ``python -m tools.workflow_shell --out build/workflow-shell FILE...``; prints
the number of scripts written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: What a ``${{ ... }}`` expression becomes: a plain word, so shellcheck sees a literal.
EXPRESSION_PLACEHOLDER = "GITHUB_EXPRESSION"
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)

#: GitHub runs a step without ``shell:`` as ``bash -e {0}``, and ``shell: bash`` as
#: ``bash --noprofile --norc -eo pipefail {0}``; both are bash, which is what shellcheck is told.
SHEBANG = "#!/usr/bin/env bash\n"


@dataclass(frozen=True)
class RunBlock:
    """One ``run:`` block: the file it comes from, where in it, and its script."""

    source: Path
    job: str
    step: str
    script: str

    def file_name(self) -> str:
        """``preview.yml--preview--3-step-name.sh``; an action goes by its directory (``setup-action.yml``)."""
        name = self.source.name
        if name in ("action.yml", "action.yaml"):
            name = f"{self.source.parent.name}-{name}"
        return "--".join(_slug(part) for part in (name, self.job, self.step)) + ".sh"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "unnamed"


def _steps(steps: object, source: Path, job: str) -> Iterator[RunBlock]:
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps, start=1):
        if isinstance(step, Mapping) and isinstance(step.get("run"), str):
            shell = step.get("shell", "bash")
            if shell not in ("bash", "sh"):
                raise ValueError(
                    f"{source}: job {job!r} step {index} runs shell {shell!r}; only bash and sh are checked"
                )
            label = f"{index}-{step.get('name') or step['run'].splitlines()[0]}"
            yield RunBlock(source=source, job=job, step=label, script=step["run"])


def run_blocks(path: Path) -> list[RunBlock]:
    """The ``run:`` blocks of a workflow (every job) or of a composite action (``runs.steps``)."""
    document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: not a YAML mapping; expected a workflow or an action.yml")
    if "jobs" in document:
        blocks: list[RunBlock] = []
        for job, body in (document["jobs"] or {}).items():
            blocks.extend(_steps((body or {}).get("steps"), path, str(job)))
        return blocks
    if "runs" in document:
        return list(_steps((document["runs"] or {}).get("steps"), path, "runs"))
    raise ValueError(f"{path}: has neither 'jobs' (a workflow) nor 'runs' (an action)")


def as_script(block: RunBlock) -> str:
    """The block as a bash script shellcheck can read, expressions replaced by a placeholder."""
    return SHEBANG + _EXPRESSION.sub(EXPRESSION_PLACEHOLDER, block.script)


def write_scripts(paths: list[Path], out: Path) -> list[Path]:
    """Write one script per run block of ``paths`` into ``out`` (emptied first); return the files."""
    out.mkdir(parents=True, exist_ok=True)
    # A block deleted from a workflow must not leave its old script to be checked.
    for stale in out.glob("*.sh"):
        stale.unlink()
    written = []
    for path in paths:
        for block in run_blocks(path):
            target = out / block.file_name()
            target.write_text(as_script(block), encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.workflow_shell", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the scripts (emptied first)")
    parser.add_argument("files", type=Path, nargs="+", help="workflow or action.yml files")
    args = parser.parse_args(argv)
    try:
        written = write_scripts(args.files, args.out)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"workflow_shell: {error}", file=sys.stderr)
        return 1
    print(f"{len(written)} run blocks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``tools.workflow_shell``: the run blocks shellcheck reads, one script per block."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.workflow_shell import EXPRESSION_PLACEHOLDER, SHEBANG, as_script, run_blocks, write_scripts

WORKFLOW = """
name: demo
on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - name: Say the stack
        run: echo "stack ${{ matrix.stack }}"
"""

ACTION = """
name: demo action
description: demo
runs:
  using: composite
  steps:
    - shell: bash
      run: make venv
"""


def _write(tmp_path: Path, relative: str, text: str) -> Path:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_workflow_yields_only_its_run_steps_with_job_and_step(tmp_path: Path) -> None:
    (block,) = run_blocks(_write(tmp_path, "wf.yml", WORKFLOW))
    assert (block.job, block.step) == ("build", "2-Say the stack")


def test_an_expression_becomes_a_placeholder_word(tmp_path: Path) -> None:
    (block,) = run_blocks(_write(tmp_path, "wf.yml", WORKFLOW))
    assert as_script(block) == f'{SHEBANG}echo "stack {EXPRESSION_PLACEHOLDER}"'


def test_an_action_is_named_by_its_directory(tmp_path: Path) -> None:
    (block,) = run_blocks(_write(tmp_path, "setup/action.yml", ACTION))
    assert block.file_name() == "setup-action.yml--runs--1-make-venv.sh"


def test_a_step_in_another_shell_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "wf.yml", WORKFLOW.replace("        run: echo", "        shell: pwsh\n        run: echo"))
    with pytest.raises(ValueError, match="runs shell 'pwsh'; only bash and sh are checked"):
        run_blocks(path)


def test_stale_scripts_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.sh").write_text("echo old\n", encoding="utf-8")
    written = write_scripts([_write(tmp_path, "wf.yml", WORKFLOW)], out)
    assert sorted(path.name for path in out.iterdir()) == [path.name for path in written]

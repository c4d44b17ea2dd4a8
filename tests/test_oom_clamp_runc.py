"""sandbox/oom_clamp_runc.py: the sandbox's runtime wrapper clamps negative OOM scores and calls runc unchanged.

Each test runs the wrapper as dockerd's containerd shim would, with a fake
runc that records its arguments, and reads the bundle or process file after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WRAPPER = Path(__file__).resolve().parents[1] / "sandbox" / "oom_clamp_runc.py"
#: What containerd-shim-runc-v2 passes before the subcommand.
GLOBALS = ["--root", "/run/runc", "--log", "/tmp/log.json", "--log-format", "json"]


@pytest.fixture
def fake_runc(tmp_path: Path) -> Path:
    """A runc that writes its arguments, one per line, to runc.args."""
    runc = tmp_path / "runc"
    runc.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "runc.args"}\n', encoding="utf-8")
    runc.chmod(0o755)
    return runc


def run(fake_runc: Path, args: list[str], cwd: Path | None = None) -> list[str]:
    """Run the wrapper; the arguments the fake runc received."""
    env = {**os.environ, "OOM_CLAMP_RUNC": str(fake_runc)}
    subprocess.run([sys.executable, str(WRAPPER), *args], env=env, cwd=cwd, check=True, timeout=30)
    return (fake_runc.parent / "runc.args").read_text(encoding="utf-8").splitlines()


def bundle(tmp_path: Path, process: dict[str, Any]) -> Path:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "process": process}), encoding="utf-8")
    return directory


def config(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "config.json").read_text(encoding="utf-8")))


def test_create_clamps_a_negative_score_to_zero(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -998})
    run(fake_runc, [*GLOBALS, "create", "--bundle", str(directory), "--pid-file", "p", "id1"])
    assert config(directory)["process"]["oomScoreAdj"] == 0


def test_runc_gets_the_arguments_unchanged(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -998})
    args = [*GLOBALS, "create", "--bundle", str(directory), "--pid-file", "p", "id1"]
    assert run(fake_runc, args) == args


def test_a_positive_score_is_left_alone(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": 500})
    before = (directory / "config.json").read_bytes()
    run(fake_runc, [*GLOBALS, "create", "-b", str(directory), "id1"])
    assert (directory / "config.json").read_bytes() == before


def test_bundle_given_with_equals_is_clamped(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -997})
    run(fake_runc, [*GLOBALS, "run", f"--bundle={directory}", "id1"])
    assert config(directory)["process"]["oomScoreAdj"] == 0


def test_the_working_directory_is_the_default_bundle(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -998})
    run(fake_runc, [*GLOBALS, "create", "id1"], cwd=directory)
    assert config(directory)["process"]["oomScoreAdj"] == 0


def test_exec_clamps_the_process_file(tmp_path: Path, fake_runc: Path) -> None:
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sh"], "oomScoreAdj": -998}), encoding="utf-8")
    run(fake_runc, [*GLOBALS, "exec", "--process", str(process), "--detach", "id1"])
    assert json.loads(process.read_text(encoding="utf-8"))["oomScoreAdj"] == 0


def test_large_integers_stay_exact(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -998, "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2**64 - 1}]})
    run(fake_runc, [*GLOBALS, "create", "--bundle", str(directory), "id1"])
    assert config(directory)["process"]["rlimits"][0]["hard"] == 18446744073709551615


def test_other_subcommands_touch_no_file(tmp_path: Path, fake_runc: Path) -> None:
    directory = bundle(tmp_path, {"oomScoreAdj": -998})
    run(fake_runc, [*GLOBALS, "delete", "id1"], cwd=directory)
    assert config(directory)["process"]["oomScoreAdj"] == -998


def test_a_missing_bundle_is_passed_through(tmp_path: Path, fake_runc: Path) -> None:
    args = [*GLOBALS, "create", "--bundle", str(tmp_path / "absent"), "id1"]
    assert run(fake_runc, args) == args

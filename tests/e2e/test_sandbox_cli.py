"""The sandbox's one entry point, ``sandbox/sandbox.sh``, where no sandbox runs: its help, its refusals, ``status``.

On a running sandbox, ``status`` and ``env`` are checked by tests/e2e/test_real_node.py.
These start nothing and need no cluster, so they run with E2E_KUBECONFIG too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.sandbox import sandbox_cli

pytestmark = pytest.mark.e2e

#: Every command the entry point has; the Makefile's sandbox targets and the READMEs use them.
COMMANDS = ("build", "up", "down", "status", "env", "registry", "smoke-test", "host-state", "tools-path")


def never_started(tmp_path: Path) -> dict[str, str]:
    """A sandbox name and work dir that no sandbox ever used."""
    return {"SANDBOX_NAME": "k8s-demo-never-started", "KWOK_WORKDIR": str(tmp_path / "kwok")}


def test_help_lists_every_command() -> None:
    done = sandbox_cli("--help")
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^  ([a-z-]+)\b", done.stdout, re.M)
    assert [command for command in COMMANDS if command not in listed] == []


@pytest.mark.parametrize(
    "args", [(), ("bogus",), ("up", "extra"), ("down", "--force"), ("registry",), ("registry", "start", "--bogus")]
)
def test_a_wrong_command_is_refused_with_usage(args: tuple[str, ...], tmp_path: Path) -> None:
    done = sandbox_cli(*args, env=never_started(tmp_path))
    assert (done.returncode, done.stdout) == (2, "")
    assert "usage: sandbox/sandbox.sh" in done.stderr


@pytest.fixture
def status(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return sandbox_cli("status", env=never_started(tmp_path))


def test_status_of_a_sandbox_never_started_fails(status: subprocess.CompletedProcess[str]) -> None:
    assert status.returncode == 1, status.stderr
    assert status.stdout.splitlines()[-1] == (
        "not up: no sandbox/sandbox.sh up completed for k8s-demo-never-started since it last went down"
    )


def test_status_shows_each_part_not_running(status: subprocess.CompletedProcess[str]) -> None:
    rows = dict(line.split(maxsplit=1) for line in status.stdout.splitlines()[1:-1])
    assert list(rows) == ["cluster", "node", "engine", "registry"]
    assert [rows[part].split()[0] for part in ("node", "engine", "registry")] == ["not"] * 3


def test_tools_path_names_the_cache(tmp_path: Path) -> None:
    done = sandbox_cli("tools-path", env={"K8S_DEMO_SANDBOX_CACHE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"{re.escape(str(tmp_path))}/[0-9a-f]{{12}}\n", done.stdout)

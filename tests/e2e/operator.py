"""Runs the operator commands (``make up``, ``make history``, ``make rollback``) in an e2e project copy.

Unlike the rest of the suite these run the program the way users do: the
Automation API on the project directory, so the Pulumi CLI starts the
program with its Python language host (``pulumi-language-python``), which
must be on PATH, and the project's ``.venv`` (here a link to the venv running
the suite).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.sandbox import Project, tools_dir

#: The language host binary the CLI looks for on PATH for a ``runtime: python`` project.
LANGUAGE_HOST = "pulumi-language-python"
#: Seconds one operator command may take: two rollouts and a failed one fit with room to spare.
COMMAND_TIMEOUT = 900


def command_env(project: Project) -> dict[str, str]:
    """The caller's environment plus the project's (state backend, sandbox kubeconfig), sandbox tools first on PATH.

    Ambient plugins are allowed: the CLI finds the language host only on PATH,
    and refuses it under ``PULUMI_IGNORE_AMBIENT_PLUGINS``.
    """
    path = os.pathsep.join([str(tools_dir() / "bin"), os.environ.get("PATH", "")])
    env = {**os.environ, **project.env, "PATH": path}
    env.pop("PULUMI_IGNORE_AMBIENT_PLUGINS", None)
    return env


def language_host_missing(project: Project) -> str | None:
    """Why the operator commands cannot run here, or None when they can."""
    if shutil.which(LANGUAGE_HOST, path=command_env(project)["PATH"]) is None:
        return f"{LANGUAGE_HOST} is not on PATH: the operator commands run the program through it"
    return None


def link_venv(project: Project) -> None:
    """Give the copy the suite's own venv as ``.venv``, where Pulumi.yaml and the Makefile look for it."""
    link = project.dir / ".venv"
    if not link.exists():
        link.symlink_to(Path(sys.prefix), target_is_directory=True)


def make(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``make <args>`` in the project copy; never raises on a non-zero exit (tests check it)."""
    link_venv(project)
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project.dir,
        env=command_env(project),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

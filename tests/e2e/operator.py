"""Runs the operator commands (``make up``, ``history``, ``rollback``, ``pr-preview``) in an e2e project copy.

They run as a user runs them: ``make`` in the project directory, whose
commands drive the Pulumi CLI, which starts the program through the Python
language host. The environment is the project copy's (``Project.env``: state
backend, sandbox kubeconfig and Docker engine, the language host on PATH).
"""

from __future__ import annotations

import os
import subprocess

from tests.e2e.sandbox import Project, tools_dir

#: Seconds one operator command may take: two rollouts and a failed one fit with room to spare.
COMMAND_TIMEOUT = 900


def command_env(project: Project) -> dict[str, str]:
    """The caller's environment plus the project's, the sandbox's Pulumi CLI first on PATH (as users have theirs)."""
    return {**os.environ, **project.env, "PATH": os.pathsep.join([str(tools_dir() / "bin"), project.env["PATH"]])}


def make(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """``make <args>`` in the project copy; never raises on a non-zero exit (tests check it)."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project.dir,
        env=command_env(project),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

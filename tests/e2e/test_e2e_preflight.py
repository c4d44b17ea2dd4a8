"""A newcomer's first errors, for real: ``make up`` refuses what it cannot do in seconds, and takes Pulumi's flags.

This file's project copy and a stack of its own (``preflight``, namespace
``k8s-demo-preflight``, 2 replicas) on the suite's cluster, deployed once at 0.1 (no
build). Each refusal runs the user's ``make up ARGS=--yes`` on a machine that
lacks one thing (the Pulumi CLI on PATH, a listening API server, a Docker
engine when the update builds), and must end within ``REFUSAL_SECONDS`` with
the pre-flight's message, exit status 2, and the stack and cluster as they
were. Then ``--skip-preview`` and ``--target`` go through ``make up`` to the
engine with Pulumi's meaning, and a build of the app's version names its
platform (the engine's), so the Docker provider has nothing to warn about.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from project import DEPLOYMENT_TYPE
from tests.e2e.operator import command_env, make
from tests.e2e.sandbox import APP_VERSION, Cluster, Project, tools_dir
from tests.e2e.test_e2e import DEPLOYMENT, SERVICE, image

pytestmark = pytest.mark.e2e

STACK = "preflight"
NS = f"k8s-demo-{STACK}"
#: The issue's bound on a refusal, from the command's start to its exit.
REFUSAL_SECONDS = 10


@dataclass(frozen=True)
class Refusal:
    """One refused ``make up``: its exit status, stderr and duration; the stack's update count and image after it."""

    returncode: int
    stderr: str
    seconds: float
    updates: int
    image: str


def updates(stack: auto.Stack) -> int:
    return len(stack.history())


def running_image(cluster: Cluster) -> str:
    deployment = cluster.get("deployment", NS, DEPLOYMENT)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def pulumi(project: Project, *args: str) -> None:
    """The user's ``pulumi <args>`` in the project copy, with the sandbox's CLI."""
    subprocess.run(
        [str(tools_dir() / "bin" / "pulumi"), *args, "--stack", STACK],
        cwd=project.dir,
        env=command_env(project),
        check=True,
        capture_output=True,
        timeout=120,
    )


def refused_up(project: Project, stack: auto.Stack, cluster: Cluster, env: dict[str, str] | None = None) -> Refusal:
    started = time.monotonic()
    done = subprocess.run(
        ["make", "--no-print-directory", "up", f"STACK={STACK}", "ARGS=--yes"],
        cwd=project.dir,
        env=env or command_env(project),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started
    return Refusal(done.returncode, done.stderr, seconds, updates(stack), running_image(cluster))


@pytest.fixture(scope="module")
def project(e2e_project: Project) -> Project:
    """This file's project copy (the app as committed)."""
    return e2e_project


@pytest.fixture(scope="module")
def stack(project: Project, e2e_cluster: Cluster) -> auto.Stack:
    created = project.stack(STACK)
    pulumi(project, "config", "set", "replicas", "2")
    pulumi(project, "config", "set", "imageTag", "0.1")
    done = make(project, "up", f"STACK={STACK}", "ARGS=--yes")
    assert done.returncode == 0, done.stderr
    return created


@pytest.fixture(scope="module")
def before(stack: auto.Stack, e2e_cluster: Cluster) -> tuple[int, str]:
    return updates(stack), running_image(e2e_cluster)


@pytest.fixture(scope="module")
def no_cli(stack: auto.Stack, before: tuple[int, str], project: Project, e2e_cluster: Cluster) -> Refusal:
    env = command_env(project)
    # The caller's PATH without any directory that has a pulumi binary (the sandbox's tools, or a user's own).
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "pulumi").exists())
    return refused_up(project, stack, e2e_cluster, env)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster_down(no_cli: Refusal, stack: auto.Stack, project: Project, e2e_cluster: Cluster) -> Refusal:
    document = yaml.safe_load(e2e_cluster.kubeconfig.read_text(encoding="utf-8"))
    for entry in document["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{closed_port()}"
    down = project.dir.parent / "down.kubeconfig"
    down.write_text(yaml.safe_dump(document), encoding="utf-8")
    pulumi(project, "config", "set", "kubernetes:kubeconfig", str(down))
    try:
        return refused_up(project, stack, e2e_cluster)
    finally:
        pulumi(project, "config", "set", "kubernetes:kubeconfig", str(e2e_cluster.kubeconfig))


@pytest.fixture(scope="module")
def no_engine(cluster_down: Refusal, stack: auto.Stack, project: Project, e2e_cluster: Cluster) -> Refusal:
    env = {**command_env(project), "DOCKER_HOST": f"unix://{project.dir.parent / 'no-docker.sock'}"}
    # From imageTag 0.1 to the app's version: this update builds.
    pulumi(project, "config", "rm", "imageTag")
    try:
        return refused_up(project, stack, e2e_cluster, env)
    finally:
        pulumi(project, "config", "set", "imageTag", "0.1")


def test_no_cli_is_refused_with_the_install_page(no_cli: Refusal) -> None:
    assert (no_cli.returncode, no_cli.stderr.splitlines()[0]) == (
        2,
        "error: [pulumi] the Pulumi CLI (`pulumi`) is not on PATH.",
    )


def test_no_cli_is_refused_within_seconds(no_cli: Refusal) -> None:
    assert no_cli.seconds < REFUSAL_SECONDS


def test_no_cli_changes_nothing(no_cli: Refusal, before: tuple[int, str]) -> None:
    assert (no_cli.updates, no_cli.image) == before


def test_a_closed_api_server_port_is_refused_naming_it(cluster_down: Refusal, project: Project) -> None:
    down = project.dir.parent / "down.kubeconfig"
    document = yaml.safe_load(down.read_text(encoding="utf-8"))
    context, server = document["current-context"], document["clusters"][0]["cluster"]["server"]
    assert (cluster_down.returncode, cluster_down.stderr.splitlines()[0]) == (
        2,
        f"error: [api-server] the API server of context {context!r} ({server}, from kubernetes:kubeconfig "
        f"(Pulumi.{STACK}.yaml) = {down}) does not answer: connection refused, within 3 s.",
    )


def test_a_closed_api_server_port_is_refused_within_seconds(cluster_down: Refusal) -> None:
    assert cluster_down.seconds < REFUSAL_SECONDS


def test_a_closed_api_server_port_changes_nothing(cluster_down: Refusal, before: tuple[int, str]) -> None:
    assert (cluster_down.updates, cluster_down.image) == before


def test_no_engine_for_a_build_is_refused_naming_the_socket(no_engine: Refusal, project: Project) -> None:
    socket_path = project.dir.parent / "no-docker.sock"
    assert no_engine.returncode == 2
    assert no_engine.stderr.splitlines()[0] == (
        f"error: [docker] this update builds {image(APP_VERSION)} (imageTag is the app's version), "
        f"and no Docker engine answers at unix://{socket_path} (DOCKER_HOST): no such socket."
    )


def test_no_engine_for_a_build_is_refused_within_seconds(no_engine: Refusal) -> None:
    assert no_engine.seconds < REFUSAL_SECONDS


def test_no_engine_for_a_build_changes_nothing(no_engine: Refusal, before: tuple[int, str]) -> None:
    assert (no_engine.updates, no_engine.image) == before


# Pulumi's own flags, through make up.


@pytest.fixture(scope="module")
def skip_preview(no_engine: Refusal, stack: auto.Stack, project: Project) -> subprocess.CompletedProcess[str]:
    pulumi(project, "config", "set", "replicas", "3")
    # Without --yes and without a terminal: as with `pulumi up --skip-preview`, nothing asks for a confirmation.
    return make(project, "up", f"STACK={STACK}", "ARGS=--skip-preview")


def test_skip_preview_updates_without_a_preview_or_a_question(skip_preview: subprocess.CompletedProcess[str]) -> None:
    assert skip_preview.returncode == 0, skip_preview.stderr
    assert "Previewing update" not in skip_preview.stdout
    assert "Updating (preflight)" in skip_preview.stdout


def test_skip_preview_applies_the_change(skip_preview: subprocess.CompletedProcess[str], e2e_cluster: Cluster) -> None:
    assert e2e_cluster.get("deployment", NS, DEPLOYMENT)["spec"]["replicas"] == 3


@dataclass(frozen=True)
class Targeted:
    done: subprocess.CompletedProcess[str]
    node_port_before: int


def deployment_urn(stack: auto.Stack) -> str:
    state = stack.export_stack().deployment or {}
    return next(str(r["urn"]) for r in state["resources"] if r["type"] == DEPLOYMENT_TYPE)


def node_port(cluster: Cluster) -> int:
    return int(cluster.get("service", NS, SERVICE)["spec"]["ports"][0]["nodePort"])


@pytest.fixture(scope="module")
def targeted(skip_preview: subprocess.CompletedProcess[str], stack: auto.Stack, project: Project) -> Targeted:
    before = node_port(project.cluster)
    pulumi(project, "config", "set", "replicas", "4")
    # A node port the Service does not have: only an update of the Service would set it.
    pulumi(project, "config", "set", "nodePort", str(before + 1 if before < 32767 else before - 1))
    try:
        # Quoted for the shell, as on a pulumi command line: a URN has a $ in it.
        done = make(project, "up", f"STACK={STACK}", f"ARGS=--yes --target '{deployment_urn(stack)}'")
    finally:
        pulumi(project, "config", "rm", "nodePort")
    return Targeted(done, before)


def test_target_updates_the_deployment(targeted: Targeted, e2e_cluster: Cluster) -> None:
    assert targeted.done.returncode == 0, targeted.done.stderr
    assert e2e_cluster.get("deployment", NS, DEPLOYMENT)["spec"]["replicas"] == 4


def test_target_leaves_the_other_resources_alone(targeted: Targeted, e2e_cluster: Cluster) -> None:
    assert node_port(e2e_cluster) == targeted.node_port_before


# The build names its platform: the Docker provider's "Building your image for linux/amd64 architecture" is gone.


@pytest.fixture(scope="module")
def build(targeted: Targeted, project: Project) -> subprocess.CompletedProcess[str]:
    # From imageTag 0.1 to the app's version: this update builds, in the sandbox's engine.
    pulumi(project, "config", "rm", "imageTag")
    return make(project, "up", f"STACK={STACK}", "ARGS=--yes")


# The sandbox's nodes run on the engine that builds; on another cluster (E2E_KUBECONFIG) the pre-flight may ask for a
# registry, which the build scenario does not set up.
ON_THE_BUILDING_ENGINE = pytest.mark.sandbox("a cluster whose nodes run on the Docker engine that builds the image")


@ON_THE_BUILDING_ENGINE
def test_a_build_deploys_the_app_version(build: subprocess.CompletedProcess[str], e2e_cluster: Cluster) -> None:
    assert build.returncode == 0, build.stderr
    assert running_image(e2e_cluster) == image(APP_VERSION)


@ON_THE_BUILDING_ENGINE
def test_a_build_prints_no_platform_warning(build: subprocess.CompletedProcess[str]) -> None:
    assert "Building your image for" not in build.stdout + build.stderr


@ON_THE_BUILDING_ENGINE
def test_a_build_is_for_the_engines_platform(build: subprocess.CompletedProcess[str], e2e_cluster: Cluster) -> None:
    engine = e2e_cluster.docker("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}").strip()
    built = e2e_cluster.docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image(APP_VERSION)).strip()
    assert built == engine

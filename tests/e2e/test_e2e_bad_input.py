"""Bad build input gets a clear error and changes nothing: the user's `up` of a build that cannot happen.

A project copy and stack of their own (``bad-input``, namespace
``k8s-demo-bad-input``), deployed first as committed (the app's version,
built). Then each case asks for a build of another version that cannot
succeed; `up` must fail with a message that names the cause, and the cluster
must still run what it ran. Every build is real, so this runs on any cluster
(E2E_KUBECONFIG) as on the sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.e2e.sandbox import APP_VERSION, Cluster, Project
from tests.e2e.test_e2e import DEPLOYMENT, image

pytestmark = pytest.mark.e2e

STACK = "bad-input"
NS = f"k8s-demo-{STACK}"
#: A version no other case uses, so each case really asks for a build.
BUILD_VERSION = "0.9"
#: A base image in a registry on a loopback port where nothing listens: unknown, and no traffic leaves the machine.
MISSING_BASE = "127.0.0.1:1/k8s-demo/no-such-base:1"


@pytest.fixture(scope="module")
def stack(e2e_project: Project) -> auto.Stack:
    # Built, not deployed by a tag nothing built: on a cluster whose nodes run the pods, the image must exist.
    created = e2e_project.stack(STACK)
    created.up()
    return created


def running_image(cluster: Cluster) -> str:
    deployment = cluster.get("deployment", NS, DEPLOYMENT)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def failed_up(stack: auto.Stack, workspace: auto.LocalWorkspace | None = None) -> str:
    target = stack if workspace is None else auto.Stack.select(STACK, workspace)
    with pytest.raises(auto.CommandError) as failure:
        target.up()
    return str(failure.value)


def edited_app(project: Project, edit: Callable[[str], str]) -> None:
    """The copy's app at BUILD_VERSION with its Dockerfile edited."""
    (project.dir / "app" / "VERSION").write_text(f"{BUILD_VERSION}\n", encoding="utf-8")
    dockerfile = project.dir / "app" / "Dockerfile"
    dockerfile.write_text(edit((Path(__file__).parents[2] / "app" / "Dockerfile").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def engine_unreachable(stack: auto.Stack, e2e_project: Project) -> str:
    socket = e2e_project.dir.parent / "no-docker.sock"
    workspace = auto.LocalWorkspace(
        work_dir=str(e2e_project.dir),
        env_vars={**e2e_project.env, "DOCKER_HOST": f"unix://{socket}"},
        pulumi_command=e2e_project.command,
    )
    edited_app(e2e_project, lambda text: text)
    try:
        return failed_up(stack, workspace)
    finally:
        e2e_project.restore_app()


@pytest.fixture(scope="module")
def broken_dockerfile(engine_unreachable: str, stack: auto.Stack, e2e_project: Project) -> str:
    edited_app(e2e_project, lambda text: text.replace("WORKDIR /src\n", "WORKDIR /src\nRUN exit 3\n"))
    try:
        return failed_up(stack)
    finally:
        e2e_project.restore_app()


@pytest.fixture(scope="module")
def unknown_base(broken_dockerfile: str, stack: auto.Stack, e2e_project: Project) -> str:
    edited_app(e2e_project, lambda text: re.sub(r"^FROM alpine:\S+", f"FROM {MISSING_BASE}", text, flags=re.M))
    try:
        return failed_up(stack)
    finally:
        e2e_project.restore_app()


def test_unreachable_engine_is_named(engine_unreachable: str) -> None:
    assert "error: docker native provider returned an unexpected error from Configure: " in engine_unreachable
    assert "failed to connect to any docker daemon" in engine_unreachable


def test_unreachable_engine_changes_nothing(engine_unreachable: str, e2e_cluster: Cluster) -> None:
    assert running_image(e2e_cluster) == image(APP_VERSION)


def test_broken_dockerfile_names_the_failing_step(broken_dockerfile: str) -> None:
    assert "error: error reading build output: executor failed running [/bin/sh -c exit 3]: exit code: 3" in (
        broken_dockerfile
    )


def test_broken_dockerfile_changes_nothing(broken_dockerfile: str, e2e_cluster: Cluster) -> None:
    assert running_image(e2e_cluster) == image(APP_VERSION)


def test_unknown_base_image_is_named(unknown_base: str) -> None:
    assert 'failed to do request: Head "http://127.0.0.1:1/v2/k8s-demo/no-such-base/manifests/1"' in unknown_base


def test_unknown_base_image_changes_nothing(unknown_base: str, e2e_cluster: Cluster) -> None:
    assert running_image(e2e_cluster) == image(APP_VERSION)

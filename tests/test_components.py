# mypy: disallow-untyped-decorators=False
# (pulumi.runtime.test is untyped; it is used here exactly as Pulumi documents it.)
"""Each component on its own under mocks: outputs, children and argument invariants."""

from __future__ import annotations

from dataclasses import replace

import pulumi
import pytest
from pulumi.runtime.settings import SETTINGS

from components.image import AppImage, AppImageArgs
from components.rollout import RolloutPlan
from components.values import Resources
from components.webapp import DEPLOYMENT_NAME, SERVICE_NAME, WebApp, WebAppArgs
from ops.offline import MOCKED_NODE_PORT, ClusterMocks
from project import IMAGE_TYPE


@pytest.fixture
def webapp_args(resources: Resources) -> WebAppArgs:
    return WebAppArgs(
        namespace="unit-ns",
        image="k8s-demo:0.1",
        local_image=True,
        version="0.1",
        change_cause="unit",
        rollout=RolloutPlan(
            replicas=2, max_surge=1, max_unavailable=0, min_ready_seconds=3, pod_ready_timeout_seconds=30
        ),
        node_port=None,
        resources=resources,
    )


@pulumi.runtime.test
def test_webapp_outputs(mocks: ClusterMocks, webapp_args: WebAppArgs) -> pulumi.Output[None]:
    app = WebApp("unit", webapp_args)

    def check(values: list[object]) -> None:
        assert values == ["unit-ns", DEPLOYMENT_NAME, SERVICE_NAME, "k8s-demo:0.1", MOCKED_NODE_PORT]

    return pulumi.Output.all(app.namespace, app.deployment_name, app.service_name, app.image, app.node_port).apply(
        check
    )


@pulumi.runtime.test
def test_webapp_fixed_node_port(mocks: ClusterMocks, webapp_args: WebAppArgs) -> pulumi.Output[None]:
    app = WebApp("unit", replace(webapp_args, node_port=30123))

    def check(node_port: int | None) -> None:
        assert node_port == 30123

    return app.node_port.apply(check)


def test_webapp_children_are_parented(mocks: ClusterMocks, webapp_args: WebAppArgs) -> None:
    @pulumi.runtime.test
    def register() -> None:
        WebApp("unit", webapp_args)

    # Checked once the test program has finished, and so every registration with it: a check
    # inside an output's apply can run before the NetworkPolicy, which no output waits for, registers.
    register()
    # A child's URN carries its parent's type: ...::k8s-demo:index:WebApp$kubernetes:apps/v1:Deployment::name
    urns = SETTINGS.monitor.resources.keys()
    children = {urn.rsplit("::", 2)[-2] for urn in urns if "k8s-demo:index:WebApp$" in urn}
    assert children == {
        "k8s-demo:index:WebApp$kubernetes:core/v1:Namespace",
        "k8s-demo:index:WebApp$kubernetes:apps/v1:Deployment",
        "k8s-demo:index:WebApp$kubernetes:core/v1:Service",
        "k8s-demo:index:WebApp$kubernetes:networking.k8s.io/v1:NetworkPolicy",
    }


def test_webapp_args_refuse_a_node_port_outside_the_range(webapp_args: WebAppArgs) -> None:
    # The rollout's invariants are the plan's own (tests/test_rollout.py).
    with pytest.raises(ValueError, match=r"^node_port must be in 30000-32767, got 80$"):
        replace(webapp_args, node_port=80)


@pulumi.runtime.test
def test_image_for_app_version_is_built(mocks: ClusterMocks) -> pulumi.Output[None]:
    image = AppImage("unit", AppImageArgs(repository="k8s-demo", tag="0.2", app_version="0.2", context="app"))

    def check(values: list[object]) -> None:
        assert values == ["k8s-demo:0.2", True]
        assert [r.inputs["imageName"] for r in mocks.resources if r.type == IMAGE_TYPE] == ["k8s-demo:0.2"]

    return pulumi.Output.all(image.image_ref, image.built).apply(check)


@pulumi.runtime.test
def test_image_for_other_tag_is_not_built(mocks: ClusterMocks) -> pulumi.Output[None]:
    image = AppImage("unit", AppImageArgs(repository="k8s-demo", tag="0.1", app_version="0.2", context="app"))

    def check(values: list[object]) -> None:
        assert values == ["k8s-demo:0.1", False]
        assert [r for r in mocks.resources if r.type == IMAGE_TYPE] == []

    return pulumi.Output.all(image.image_ref, image.built).apply(check)


@pulumi.runtime.test
def test_pushed_image_ref_is_the_digest(mocks: ClusterMocks) -> pulumi.Output[None]:
    args = AppImageArgs(repository="localhost:5000/k8s-demo", tag="0.2", app_version="0.2", context="app")
    image = AppImage("unit", args)

    def check(ref: str) -> None:
        assert ref.startswith("localhost:5000/k8s-demo@sha256:")

    return image.image_ref.apply(check)


@pulumi.runtime.test
def test_a_pinned_digest_is_deployed_and_nothing_is_built(mocks: ClusterMocks) -> pulumi.Output[None]:
    digest = "sha256:" + "ab" * 32
    args = AppImageArgs(
        repository="localhost:5000/k8s-demo", tag="0.2", app_version="0.2", context="app", digest=digest
    )
    image = AppImage("unit", args)

    def check(values: list[object]) -> None:
        assert values == [f"localhost:5000/k8s-demo@{digest}", False]
        assert [r for r in mocks.resources if r.type == IMAGE_TYPE] == []

    return pulumi.Output.all(image.image_ref, image.built).apply(check)


def test_image_args_refuse_a_digest_for_a_local_image() -> None:
    with pytest.raises(ValueError, match="a digest pins a pushed image; 'k8s-demo' names no registry host"):
        AppImageArgs(repository="k8s-demo", tag="0.2", app_version="0.2", context="app", digest="sha256:" + "ab" * 32)


@pulumi.runtime.test
def test_the_build_names_its_platform(mocks: ClusterMocks) -> pulumi.Output[None]:
    args = AppImageArgs(repository="k8s-demo", tag="0.2", app_version="0.2", context="app", platform="linux/arm64")
    image = AppImage("unit", args)

    def check(_: str) -> None:
        builds = [r.inputs["build"] for r in mocks.resources if r.type == IMAGE_TYPE]
        assert builds == [{"context": "app", "dockerfile": "app/Dockerfile", "platform": "linux/arm64"}]

    return image.image_ref.apply(check)


@pytest.mark.parametrize("tag", ["", "latest"])
def test_image_args_refuse_unnamed_versions(tag: str) -> None:
    with pytest.raises(ValueError, match="tag must name a version"):
        AppImageArgs(repository="k8s-demo", tag=tag, app_version="0.2", context="app")

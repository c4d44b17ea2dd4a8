"""Stage 1 of a canary release under mocks: the canary's objects, labels and selectors; the stable untouched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.labels import INSTANCE, NAME, TRACK, VERSION
from components.webapp import CANARY_DEPLOYMENT_NAME, DEPLOYMENT_NAME, SKIP_AWAIT
from ops.offline import MockResource, ProgramRun, run_program
from project import DEPLOYMENT_TYPE, IMAGE_TYPE, ROOT, SERVICE_TYPE, config_key
from tests.examples import example_config

APP_VERSION = (ROOT / "app" / "VERSION").read_text().strip()
# The stable tag of the canary release below: an older, existing tag (not built).
STABLE = "0.1"
Run = Callable[..., ProgramRun]


@pytest.fixture(scope="module")
def stage1(run_prod_like: Run) -> ProgramRun:
    """Stage 1 as make up writes it: imageTag names the stable tag, canaryImageTag the app's version."""
    return run_prod_like(imageTag=STABLE, canaryImageTag="app/VERSION")


@pytest.fixture(scope="module")
def rolling(run_prod_like: Run) -> ProgramRun:
    """The same stack with no canary: what stage 1 must leave the stable Deployment as."""
    return run_prod_like(imageTag=STABLE)


@pytest.fixture(scope="module")
def run_prod_like() -> Run:
    def run(**keys: str) -> ProgramRun:
        config = {
            **example_config("dev"),
            config_key("rolloutStrategy"): "canary",
            config_key("replicas"): "4",
            **{config_key(key): value for key, value in keys.items()},
        }
        return run_program("dev", config)

    return run


def deployment(run: ProgramRun, name: str) -> MockResource:
    found = [r for r in run.of_type(DEPLOYMENT_TYPE) if r.inputs["metadata"]["name"] == name]
    assert len(found) == 1, f"{name}: {len(found)}"
    return found[0]


def canary_spec(run: ProgramRun) -> dict[str, Any]:
    return dict(deployment(run, CANARY_DEPLOYMENT_NAME).inputs["spec"])


def test_stage1_adds_a_canary_deployment(stage1: ProgramRun) -> None:
    names = sorted(r.inputs["metadata"]["name"] for r in stage1.of_type(DEPLOYMENT_TYPE))
    assert names == [CANARY_DEPLOYMENT_NAME, DEPLOYMENT_NAME]


def test_no_canary_deployment_without_a_canary_tag(rolling: ProgramRun) -> None:
    assert [r.inputs["metadata"]["name"] for r in rolling.of_type(DEPLOYMENT_TYPE)] == [DEPLOYMENT_NAME]


def test_stable_deployment_is_untouched_by_stage1(stage1: ProgramRun, rolling: ProgramRun) -> None:
    assert deployment(stage1, DEPLOYMENT_NAME).inputs == deployment(rolling, DEPLOYMENT_NAME).inputs


def test_canary_runs_canary_replicas(stage1: ProgramRun) -> None:
    assert canary_spec(stage1)["replicas"] == 1


def test_canary_runs_the_new_image(stage1: ProgramRun) -> None:
    containers = canary_spec(stage1)["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [f"k8s-demo:{APP_VERSION}"]


def test_the_canary_image_is_built_and_the_stable_one_is_not(stage1: ProgramRun) -> None:
    assert [r.inputs["imageName"] for r in stage1.of_type(IMAGE_TYPE)] == [f"k8s-demo:{APP_VERSION}"]


def test_canary_pods_carry_the_service_selector_labels(stage1: ProgramRun) -> None:
    pod_labels = canary_spec(stage1)["template"]["metadata"]["labels"]
    service_selector = dict(stage1.one(SERVICE_TYPE).inputs["spec"]["selector"])
    assert service_selector.items() <= pod_labels.items()


def test_canary_pods_carry_the_canary_track_and_their_version(stage1: ProgramRun) -> None:
    pod_labels = canary_spec(stage1)["template"]["metadata"]["labels"]
    assert (pod_labels[TRACK], pod_labels[VERSION]) == ("canary", APP_VERSION)


def test_canary_selector_is_the_service_selector_and_the_track(stage1: ProgramRun) -> None:
    assert canary_spec(stage1)["selector"]["matchLabels"] == {
        NAME: "k8s-demo",
        INSTANCE: "k8s-demo-dev",
        TRACK: "canary",
    }


def test_stable_pods_carry_no_track(stage1: ProgramRun) -> None:
    pod_labels = deployment(stage1, DEPLOYMENT_NAME).inputs["spec"]["template"]["metadata"]["labels"]
    assert TRACK not in pod_labels


def test_service_is_unchanged_by_stage1(stage1: ProgramRun, rolling: ProgramRun) -> None:
    assert stage1.one(SERVICE_TYPE).inputs == rolling.one(SERVICE_TYPE).inputs


def test_pulumi_up_does_not_wait_for_the_canary(stage1: ProgramRun) -> None:
    # make up watches the canary's pods itself, and aborts on the first crash.
    assert deployment(stage1, CANARY_DEPLOYMENT_NAME).inputs["metadata"]["annotations"][SKIP_AWAIT] == "true"


def test_canary_pod_template_is_the_stable_one_but_image_and_labels(stage1: ProgramRun) -> None:
    stable = deployment(stage1, DEPLOYMENT_NAME).inputs["spec"]["template"]["spec"]
    canary = canary_spec(stage1)["template"]["spec"]
    without_image = [
        {k: v for k, v in c.items() if k != "image"} for c in (stable["containers"][0], canary["containers"][0])
    ]
    assert ({**canary, "containers": None}, without_image[1]) == ({**stable, "containers": None}, without_image[0])

"""Promotion and the drift watch, for real: `make promote` and `make drift` on two stacks and a registry.

A project copy, registry (``sandbox/registry.sh``) and two stacks of their own:
``promo-dev`` (namespace ``k8s-demo-promo-dev``) builds and pushes, and
``promo-prod`` (``k8s-demo-promo-prod``), a prod-like stack pulling from the
same registry, gets releases only by promotion. The steps build on each other
in file order: dev releases; prod gets exactly dev's digest; each refusal
changes nothing; then `make drift` on prod: clean, after `kubectl set image`,
after `kubectl scale`, and with the cluster unreachable, never writing state.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tests.e2e.operator import make
from tests.e2e.sandbox import APP_VERSION, Cluster, Project
from tests.e2e.test_e2e import DEPLOYMENT, pod_images
from tests.e2e.test_e2e_registry import REPOSITORY, Registry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.sandbox("a registry of the sandbox's own on 127.0.0.1, pushed to by the sandbox's engine"),
]

DEV, PROD = "promo-dev", "promo-prod"
REPLICAS = 2


@pytest.fixture(scope="module")
def project(e2e_project: Project) -> Project:
    return e2e_project


def namespace(stack: str) -> str:
    return f"k8s-demo-{stack}"


def running_image(cluster: Cluster, stack: str) -> str:
    deployed = cluster.get("deployment", namespace(stack), DEPLOYMENT)
    return str(deployed["spec"]["template"]["spec"]["containers"][0]["image"])


def history(project: Project, stack: str) -> list[dict[str, Any]]:
    """``make history JSON=1``: the releases, newest first."""
    done = make(project, "history", f"STACK={stack}", "JSON=1")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout[done.stdout.index("\n[") + 1 :]))


def state_files(project: Project, stack: str) -> dict[str, bytes]:
    """Every file the file backend keeps for the stack: its state, its history entries and their state copies."""
    root = Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi"
    paths = [*root.glob(f"stacks/*/{stack}.json*"), *root.glob(f"history/*/{stack}/*")]
    return {str(path.relative_to(root)): path.read_bytes() for path in paths}


@dataclass
class Stacks:
    dev: auto.Stack
    prod: auto.Stack
    dev_image: str


@pytest.fixture(scope="module")
def stacks(project: Project, registry: Registry, e2e_cluster: Cluster) -> Stacks:
    """dev's first release (built, pushed, by digest), and prod, which exists but has never been released."""
    created = {}
    for name in (DEV, PROD):
        created[name] = project.stack(name)
        created[name].set_config("imageRepository", auto.ConfigValue(registry.repository))
        created[name].set_config("replicas", auto.ConfigValue(str(REPLICAS)))
    done = make(project, "up", f"STACK={DEV}", "ARGS=--yes")
    assert done.returncode == 0, done.stderr
    return Stacks(created[DEV], created[PROD], running_image(e2e_cluster, DEV))


@dataclass
class Previewed:
    done: subprocess.CompletedProcess[str]
    comment: str
    files_before: dict[str, bytes]
    files_after: dict[str, bytes]
    config_before: bytes
    config_after: bytes


@pytest.fixture(scope="module")
def previewed(stacks: Stacks, project: Project, tmp_path_factory: pytest.TempPathFactory) -> Previewed:
    """The plan first: PREVIEW=1, with the comment the promotion workflow shows its reviewers."""
    out = tmp_path_factory.mktemp("promote-preview") / "plan.md"
    stack_file = project.dir / f"Pulumi.{PROD}.yaml"
    before, config_before = state_files(project, PROD), stack_file.read_bytes()
    done = make(project, "promote", f"FROM={DEV}", f"TO={PROD}", "PREVIEW=1", f"OUT={out}")
    comment = out.read_text(encoding="utf-8") if out.exists() else ""
    return Previewed(done, comment, before, state_files(project, PROD), config_before, stack_file.read_bytes())


@dataclass
class Promoted:
    done: subprocess.CompletedProcess[str]
    images_before: set[str]


@pytest.fixture(scope="module")
def promoted(previewed: Previewed, stacks: Stacks, project: Project, e2e_cluster: Cluster) -> Promoted:
    before = e2e_cluster.images()
    done = make(project, "promote", f"FROM={DEV}", f"TO={PROD}", "ARGS=--yes")
    return Promoted(done, before)


def test_dev_runs_its_pushed_digest(stacks: Stacks, registry: Registry) -> None:
    assert stacks.dev_image == f"{registry.repository}@{registry.manifest_digest(APP_VERSION)}"


def test_preview_shows_the_plan_and_the_provenance(previewed: Previewed, stacks: Stacks) -> None:
    assert previewed.done.returncode == 0, previewed.done.stderr
    digest = stacks.dev_image.split("@", 1)[1]
    assert f"Promote {DEV} release 1 to {PROD}:" in previewed.done.stdout
    assert f"- promoted from {DEV} release 1, {digest}; nothing is built" in previewed.comment


def test_preview_changes_nothing(previewed: Previewed) -> None:
    assert (previewed.files_after, previewed.config_after) == (previewed.files_before, previewed.config_before)


def test_promote_deploys_exactly_devs_digest(promoted: Promoted, stacks: Stacks, e2e_cluster: Cluster) -> None:
    assert promoted.done.returncode == 0, promoted.done.stderr
    assert running_image(e2e_cluster, PROD) == stacks.dev_image
    assert pod_images(e2e_cluster, namespace(PROD)) == [stacks.dev_image] * REPLICAS


def test_promote_builds_and_pushes_nothing(promoted: Promoted, stacks: Stacks, e2e_cluster: Cluster) -> None:
    assert (e2e_cluster.images(), stacks.prod.outputs()["imageBuilt"].value) == (promoted.images_before, False)


def test_prods_history_records_where_the_release_came_from(
    promoted: Promoted, project: Project, stacks: Stacks
) -> None:
    (release,) = history(project, PROD)
    digest = stacks.dev_image.split("@", 1)[1]
    assert (release["result"], release["imageTag"], release["imageDigest"]) == ("succeeded", APP_VERSION, digest)
    assert release["message"] == (
        f"promoted from {DEV} release 1, {digest}: image {stacks.dev_image.split('@')[0]}:{APP_VERSION}, stack {PROD}"
    )


# Each refusal changes nothing.


@dataclass
class Refused:
    done: subprocess.CompletedProcess[str]
    files_before: dict[str, bytes]
    files_after: dict[str, bytes]
    image_after: str


def refused(project: Project, cluster: Cluster, *args: str) -> Refused:
    before = state_files(project, PROD)
    done = make(project, "promote", *args)
    return Refused(done, before, state_files(project, PROD), running_image(cluster, PROD))


@pytest.fixture(scope="module")
def failed_dev_release(promoted: Promoted, stacks: Stacks, project: Project) -> Stacks:
    """dev's release 2 fails at once: its Service asks for the node port prod's Service holds."""
    port = stacks.prod.outputs()["nodePort"].value
    stacks.dev.set_config("nodePort", auto.ConfigValue(str(port)))
    try:
        done = make(project, "up", f"STACK={DEV}", "ARGS=--yes")
        assert done.returncode != 0
    finally:
        stacks.dev.remove_config("nodePort")
    return stacks


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((f"FROM={DEV}", f"TO={DEV}"), f"FROM and TO are both {DEV}"),
        ((f"FROM={DEV}", "TO=promo-nowhere"), "TO=promo-nowhere: there is no stack promo-nowhere in this backend"),
        ((f"FROM={DEV}", f"TO={PROD}", "REL=2"), f"{DEV} release 2 (tag {APP_VERSION}) failed"),
    ],
)
def test_a_refused_promotion_changes_nothing(
    failed_dev_release: Stacks, project: Project, e2e_cluster: Cluster, args: tuple[str, ...], message: str
) -> None:
    result = refused(project, e2e_cluster, *args, "ARGS=--yes")
    assert message in result.done.stderr
    assert "Nothing was changed." in result.done.stderr
    assert (result.files_after, result.image_after) == (result.files_before, failed_dev_release.dev_image)


def test_a_digest_tos_registry_lacks_is_refused_and_changes_nothing(
    promoted: Promoted, stacks: Stacks, project: Project, registry: Registry, e2e_cluster: Cluster
) -> None:
    # prod pulls from another repository of the registry, which never got dev's push.
    other = f"{registry.address}/{REPOSITORY}-prod"
    stacks.prod.set_config("imageRepository", auto.ConfigValue(other))
    try:
        result = refused(project, e2e_cluster, f"FROM={DEV}", f"TO={PROD}", "REL=1", "ARGS=--yes")
    finally:
        stacks.prod.set_config("imageRepository", auto.ConfigValue(registry.repository))
    digest = stacks.dev_image.split("@", 1)[1]
    assert f"{other}@{digest} is not in the registry {registry.address}" in result.done.stderr
    assert (result.files_after, result.image_after) == (result.files_before, stacks.dev_image)


# make drift on prod.


@dataclass
class DriftCheck:
    done: subprocess.CompletedProcess[str]
    verdict: dict[str, Any]
    files_before: dict[str, bytes]
    files_after: dict[str, bytes]


def drift(project: Project, tmp: Path) -> DriftCheck:
    out = tmp / "drift.json"
    before = state_files(project, PROD)
    done = make(project, "drift", f"STACK={PROD}", f"OUT={out}")
    verdict = json.loads(out.read_text(encoding="utf-8"))
    return DriftCheck(done, verdict, before, state_files(project, PROD))


@pytest.fixture(scope="module")
def clean(promoted: Promoted, project: Project, tmp_path_factory: pytest.TempPathFactory) -> DriftCheck:
    return drift(project, tmp_path_factory.mktemp("drift-clean"))


@pytest.fixture(scope="module")
def image_changed(
    clean: DriftCheck, project: Project, e2e_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> DriftCheck:
    e2e_cluster.kubectl("-n", namespace(PROD), "set", "image", f"deployment/{DEPLOYMENT}", "web=k8s-demo:by-hand")
    return drift(project, tmp_path_factory.mktemp("drift-image"))


@pytest.fixture(scope="module")
def scaled(
    image_changed: DriftCheck, project: Project, e2e_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> DriftCheck:
    e2e_cluster.kubectl("-n", namespace(PROD), "scale", f"deployment/{DEPLOYMENT}", "--replicas=1")
    return drift(project, tmp_path_factory.mktemp("drift-scale"))


@pytest.fixture(scope="module")
def unreachable(
    scaled: DriftCheck, project: Project, e2e_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> DriftCheck:
    """The cluster goes away: its kubeconfig (the file the stack's provider reads) names a port nobody listens on.

    The stack's config stays as it is: a changed kubeconfig key would be a change of the provider, which the
    refresh does not use (it reads with the provider the last update recorded).
    """
    original = e2e_cluster.kubeconfig.read_bytes()
    gone = re.sub(r"server: \S+", "server: https://127.0.0.1:1", original.decode())
    e2e_cluster.kubeconfig.write_text(gone, encoding="utf-8")
    try:
        return drift(project, tmp_path_factory.mktemp("drift-unreachable"))
    finally:
        e2e_cluster.kubeconfig.write_bytes(original)


def test_no_drift_after_the_promotion(clean: DriftCheck) -> None:
    assert (clean.done.returncode, clean.verdict["exitCode"]) == (0, 0), clean.done.stderr
    assert f"{PROD}: no drift: the cluster matches the last update." in clean.done.stdout


def test_kubectl_set_image_is_drift_naming_the_image(image_changed: DriftCheck, stacks: Stacks) -> None:
    assert image_changed.verdict["exitCode"] == 1
    assert (
        f"- Deployment {DEPLOYMENT}: `spec.template.spec.containers[0].image` is `k8s-demo:by-hand` in the cluster "
        f"(last update: `{stacks.dev_image}`), config asks for `{stacks.dev_image}`"
    ) in image_changed.verdict["markdown"].splitlines()


def test_kubectl_scale_is_drift_naming_the_replicas(scaled: DriftCheck) -> None:
    assert scaled.verdict["exitCode"] == 1
    assert (
        f"- Deployment {DEPLOYMENT}: `spec.replicas` is `1` in the cluster (last update: `{REPLICAS}`), "
        f"config asks for `{REPLICAS}`"
    ) in scaled.verdict["markdown"].splitlines()


def test_make_drift_fails_on_drift(scaled: DriftCheck) -> None:
    # make turns the command's 1 into its own 2; the JSON verdict keeps the 1.
    assert scaled.done.returncode == 2


def test_an_unreachable_cluster_exits_2(unreachable: DriftCheck) -> None:
    assert unreachable.verdict["exitCode"] == 2, unreachable.verdict["markdown"] + unreachable.done.stderr[-3000:]
    assert unreachable.verdict["markdown"].startswith(f"{PROD}: the drift check failed, so drift is unknown:")


@pytest.mark.parametrize("check", ["clean", "image_changed", "scaled", "unreachable"])
def test_make_drift_writes_no_state(check: str, request: pytest.FixtureRequest) -> None:
    found: DriftCheck = request.getfixturevalue(check)
    assert found.files_after == found.files_before

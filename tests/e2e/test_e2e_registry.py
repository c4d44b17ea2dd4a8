"""Pushed images: the registry stack builds, pushes to a registry and deploys the image by digest.

A project copy, stack (``registry``, namespace ``k8s-demo-registry``) and
registry of their own: ``sandbox/sandbox.sh registry`` runs CNCF distribution's
registry on a free port of 127.0.0.1, and ``imageRepository`` names it, as
``Pulumi.prod.yaml`` names a real one. The steps build on each other in file
order: the first `up` builds the app's version and pushes it; a rebuild of the
same tag with other content pushes a new digest and rolls out; then the
registry goes read-only and refuses the next push, which must fail with a
message that names the refusal and leave the cluster as it was.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tests.e2e.operator import make
from tests.e2e.sandbox import APP_VERSION, Cluster, Project, sandbox_cli
from tests.e2e.test_e2e import DEPLOYMENT, pod_images, rollout_complete

pytestmark = [
    pytest.mark.e2e,
    # The engine pushes to it on 127.0.0.1, and the cluster runs what it serves: the sandbox's, on this host.
    pytest.mark.sandbox("the sandbox's own registry on 127.0.0.1, pushed to by the sandbox's engine"),
]

STACK = "registry"
NS = f"k8s-demo-{STACK}"
#: The repository's path in the registry (``<host>/k8s-demo``).
REPOSITORY = "k8s-demo"
#: Two pods, one rollout batch (maxSurge 1 + maxUnavailable 1): a rollout takes one minReadySeconds.
REPLICAS = 2
#: The manifest types a push of the sandbox's engine gives (Docker's v2 schema 2; OCI, as newer engines push).
MANIFEST_TYPES = ", ".join(
    ["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"]
)
#: Seconds a registry command may take (it waits up to 30 s for the registry to answer).
REGISTRY_TIMEOUT = 60


@dataclass
class Registry:
    """A registry of this module's own, run by ``sandbox/sandbox.sh registry`` in ``directory``."""

    directory: Path
    address: str = ""

    def _run(self, *args: str) -> str:
        done = sandbox_cli(
            "registry", *args, env={"SANDBOX_REGISTRY_DIR": str(self.directory)}, timeout=REGISTRY_TIMEOUT
        )
        if done.returncode != 0:
            raise RuntimeError(f"sandbox/sandbox.sh registry {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    def start(self, *, read_only: bool = False) -> None:
        """Start it (again): the same port and storage; ``read_only`` refuses every push."""
        self.address = self._run("start", *(["--read-only"] if read_only else []))

    def stop(self) -> None:
        self._run("stop")

    @property
    def repository(self) -> str:
        """The ``imageRepository`` that pushes here."""
        return f"{self.address}/{REPOSITORY}"

    def manifest_digest(self, tag: str) -> str:
        """The registry's ``Docker-Content-Digest`` of the tag's manifest (``sha256:<hex>``)."""
        request = urllib.request.Request(
            f"http://{self.address}/v2/{REPOSITORY}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": MANIFEST_TYPES},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def stack(e2e_project: Project, registry: Registry) -> auto.Stack:
    created = e2e_project.stack(STACK)
    created.set_config("imageRepository", auto.ConfigValue(registry.repository))
    created.set_config("replicas", auto.ConfigValue(str(REPLICAS)))
    return created


def deployment(cluster: Cluster) -> dict[str, Any]:
    return cluster.get("deployment", NS, DEPLOYMENT)


def running_image_of(deployed: dict[str, Any]) -> str:
    return str(deployed["spec"]["template"]["spec"]["containers"][0]["image"])


@dataclass
class Release:
    """What one `up` left: its outputs, the tag's digest in the registry, the Deployment's image."""

    outputs: dict[str, Any]
    digest: str
    image: str


def released(result: auto.UpResult, registry: Registry, cluster: Cluster) -> Release:
    return Release(
        outputs={key: value.value for key, value in result.outputs.items()},
        digest=registry.manifest_digest(APP_VERSION),
        image=running_image_of(deployment(cluster)),
    )


@pytest.fixture(scope="module")
def first_push(stack: auto.Stack, registry: Registry, e2e_cluster: Cluster) -> Release:
    return released(stack.up(), registry, e2e_cluster)


@dataclass
class Rebuild:
    before: Release
    after: Release
    replica_sets: dict[str, tuple[str, int]]


@pytest.fixture(scope="module")
def rebuild(
    first_push: Release, stack: auto.Stack, e2e_project: Project, registry: Registry, e2e_cluster: Cluster
) -> Rebuild:
    """The same tag rebuilt with another page: what a fix without a version bump does."""
    e2e_project.write_app(APP_VERSION, "Hello again, Kubernetes!")
    after = released(stack.up(), registry, e2e_cluster)
    return Rebuild(before=first_push, after=after, replica_sets=replica_set_images(e2e_cluster))


def replica_set_images(cluster: Cluster) -> dict[str, tuple[str, int]]:
    """The Deployment's ReplicaSets: name -> (image, replicas)."""
    return {
        rs["metadata"]["name"]: (rs["spec"]["template"]["spec"]["containers"][0]["image"], rs["spec"]["replicas"])
        for rs in cluster.get("replicasets", NS)["items"]
    }


@dataclass
class Refusal:
    """The refused push: the engine's error (``pulumi up``), ``make up``'s, and the Deployment before and after."""

    message: str
    make_up: subprocess.CompletedProcess[str]
    before: dict[str, Any]
    after: dict[str, Any]
    digest_after: str


@pytest.fixture(scope="module")
def refused_push(
    rebuild: Rebuild, stack: auto.Stack, e2e_project: Project, registry: Registry, e2e_cluster: Cluster
) -> Refusal:
    """Another rebuild of the same tag, while the registry is read-only (under maintenance)."""
    before = deployment(e2e_cluster)
    registry.start(read_only=True)
    e2e_project.write_app(APP_VERSION, "Hello, read-only registry!")
    try:
        with pytest.raises(auto.CommandError) as failure:
            stack.up()
        # The user's path: make up (ops.releases up) explains what the engine reported.
        made = make(e2e_project, "up", f"STACK={STACK}", "ARGS=--yes")
    finally:
        e2e_project.restore_app()
    return Refusal(
        message=str(failure.value),
        make_up=made,
        before=before,
        after=deployment(e2e_cluster),
        digest_after=registry.manifest_digest(APP_VERSION),
    )


# The first up: build, push, deploy by digest.


def test_up_deploys_the_pushed_digest(first_push: Release, registry: Registry) -> None:
    assert first_push.image == f"{registry.repository}@{first_push.digest}"


def test_pushed_digest_is_a_sha256(first_push: Release) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first_push.digest)


def test_up_outputs_the_digest_image_as_built(first_push: Release) -> None:
    assert (first_push.outputs["image"], first_push.outputs["imageBuilt"]) == (first_push.image, True)


def test_every_pod_runs_the_digest(first_push: Release, e2e_cluster: Cluster) -> None:
    assert pod_images(e2e_cluster, NS) == [first_push.image] * REPLICAS


# The same tag rebuilt with other content.


def test_rebuild_pushes_a_new_digest_for_the_same_tag(rebuild: Rebuild) -> None:
    assert rebuild.after.digest != rebuild.before.digest


def test_rebuild_deploys_the_new_digest(rebuild: Rebuild, registry: Registry) -> None:
    assert rebuild.after.image == f"{registry.repository}@{rebuild.after.digest}"


def test_rebuild_rolls_out_a_new_replica_set(rebuild: Rebuild) -> None:
    assert sorted(rebuild.replica_sets.values()) == sorted([(rebuild.before.image, 0), (rebuild.after.image, REPLICAS)])


def test_rebuild_rolls_out_to_every_pod(rebuild: Rebuild, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster, REPLICAS, NS)


# The registry refuses the push.


def test_refused_push_is_named_by_the_engine(refused_push: Refusal) -> None:
    # pulumi-docker's words for Docker's: a read-only registry answers every upload with a bare 405.
    assert re.search(
        r"docker:index:Image \(app-image-build\):\n(?:.*\n)*?\s*error: error reading push output: "
        r"error parsing HTTP 405 response body: .*\"Method not allowed\\n\"",
        refused_push.message,
    )


def test_make_up_fails_on_a_refused_push(refused_push: Refusal) -> None:
    # make exits 2 when a recipe fails, and names the recipe's own status: ops.releases up's 1.
    # (Under another make, as in `make e2e`, make calls itself make[1].)
    last_line = refused_push.make_up.stderr.splitlines()[-1]
    assert refused_push.make_up.returncode == 2
    assert re.fullmatch(r"make(?:\[[0-9]+\])?: \*\*\* \[Makefile:[0-9]+: up\] Error 1", last_line)


def test_make_up_names_the_registry_the_image_and_the_refusal(refused_push: Refusal, registry: Registry) -> None:
    assert (
        f"error: the push of {registry.repository}:{APP_VERSION} to {registry.address} failed: "
        "HTTP 405 Method not allowed\n"
        "The registry refused it: it accepts no pushes, as when it is read-only (maintenance, garbage collection).\n"
        "The Deployment was not changed: it still runs the image it ran before."
    ) in refused_push.make_up.stderr


def test_refused_push_changes_nothing(refused_push: Refusal, rebuild: Rebuild) -> None:
    assert (running_image_of(refused_push.after), refused_push.after["metadata"]["generation"]) == (
        rebuild.after.image,
        refused_push.before["metadata"]["generation"],
    )


def test_refused_push_leaves_every_pod_on_the_previous_digest(
    refused_push: Refusal, rebuild: Rebuild, e2e_cluster: Cluster
) -> None:
    assert pod_images(e2e_cluster, NS) == [rebuild.after.image] * REPLICAS


def test_refused_push_leaves_the_tag_at_its_digest(refused_push: Refusal, rebuild: Rebuild) -> None:
    assert refused_push.digest_after == rebuild.after.digest

"""End-to-end fixtures (make e2e): the cluster every scenario runs on, and a project copy per scenario file.

Every scenario reaches its cluster through ``e2e_cluster``, which asks the
session's ``e2e_clusters`` for it. By default those are sandboxes of the
suite's own, started on first use and deleted at the end: one where kwok
simulates every node, and, for a file marked
``pytest.mark.sandbox(..., real_node=True)``, one with the host's real node.

``E2E_KUBECONFIG=<kubeconfig> make e2e`` runs the scenarios on the cluster
that kubeconfig names instead, building in the Docker engine of
``DOCKER_HOST``. A scenario that needs the suite's own sandbox says so with
``pytest.mark.sandbox("<what it needs>")``, on its file or on a test, and is
skipped there with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.sandbox import Cluster, Clusters, Project, tools_built, tools_dir

if TYPE_CHECKING:
    from tests.e2e.test_e2e_registry import Registry

#: Names a kubeconfig: run the suite on that cluster instead of sandboxes of its own.
EXTERNAL_KUBECONFIG = "E2E_KUBECONFIG"


def external_kubeconfig() -> Path | None:
    """The kubeconfig of ``E2E_KUBECONFIG`` (``~`` expanded), or None: the suite's own sandboxes."""
    value = os.environ.get(EXTERNAL_KUBECONFIG, "")
    return Path(value).expanduser().absolute() if value else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sandbox(needs, real_node=False): the scenario needs the suite's own sandbox, for what `needs` says; "
        f"skipped when {EXTERNAL_KUBECONFIG} names another cluster. real_node=True (on a file): the sandbox "
        "with the host's real node.",
    )


#: The xdist group of every scenario file on the real node: one worker runs them all, one after another.
REAL_NODE_GROUP = "real-node"
#: The real-node file that takes the sandbox down at its end, so it runs after the others.
LAST_REAL_NODE_FILE = "tests/e2e/test_real_node.py"


def _real_node(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("sandbox")
    return bool(marker and marker.kwargs.get("real_node"))


# First: xdist's own hook in each worker reads the groups to name their items, so they must be marked before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the scenarios for xdist, and with E2E_KUBECONFIG skip each that needs the sandbox, saying what for.

    ``make e2e`` runs ``--dist loadgroup``: each scenario file is a group of its own, as with ``loadfile``, but the
    files on the real node share one group, because a host runs one real node: a second worker starting its own
    would take the node from the first.
    """
    for item in items:
        item.add_marker(pytest.mark.xdist_group(REAL_NODE_GROUP if _real_node(item) else item.nodeid.split("::")[0]))
    # test_real_node.py ends with `make sandbox-down` and checks the host is as it was: the other real-node files go
    # first (a stable sort keeps every file's own order).
    items.sort(key=lambda item: item.nodeid.startswith(LAST_REAL_NODE_FILE))
    kubeconfig = external_kubeconfig()
    if kubeconfig is None:
        return
    for item in items:
        marker = item.get_closest_marker("sandbox")
        if marker is not None:
            reason = f"needs {marker.args[0]}; {EXTERNAL_KUBECONFIG} points at another cluster ({kubeconfig})"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def e2e_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """The clusters of this session: sandboxes of its own, or E2E_KUBECONFIG's cluster."""
    if not tools_built():
        # The Pulumi CLI, its language host and providers come from the tools, whatever the cluster.
        pytest.fail(f"sandbox tools are not built in {tools_dir()}: run `make sandbox-tools` first")
    with Clusters(tmp_path_factory.mktemp, external_kubeconfig()) as clusters:
        yield clusters


@pytest.fixture(scope="module")
def e2e_cluster(request: pytest.FixtureRequest, e2e_clusters: Clusters) -> Cluster:
    """This scenario file's cluster: the kwok sandbox, or the real node's for a file marked real_node=True."""
    marker = request.node.get_closest_marker("sandbox")
    try:
        return e2e_clusters.get(real_node=bool(marker and marker.kwargs.get("real_node")))
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def e2e_project(tmp_path_factory: pytest.TempPathFactory, e2e_cluster: Cluster) -> Iterator[Project]:
    """A copy of the project with its own file state backend, pointed at this file's cluster."""
    project = Project(tmp_path_factory.mktemp("project"), e2e_cluster)
    yield project
    project.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry of this scenario file's own on 127.0.0.1, stopped when the file is done (its images are kept)."""
    # Imported here, not at the top: importing a scenario module while this conftest loads would evaluate its
    # `sandbox` marks before pytest_configure above has registered that marker.
    from tests.e2e.test_e2e_registry import Registry  # noqa: PLC0415

    started = Registry(tmp_path_factory.mktemp("registry"))
    try:
        started.start()
        yield started
    finally:
        started.stop()

"""Drives the real Pulumi engine against the local sandbox cluster, for the e2e suite and ``make bench``.

Everything on the user's path is real: the Pulumi CLI runs the project's own
``__main__.py`` from a project directory through the Python language host
(``pulumi-language-python``), the Docker provider builds ``app/`` in the
sandbox's own Docker engine, and the Kubernetes provider deploys to the API
server, etcd, controller manager (Deployment and ReplicaSet controllers) and
scheduler. By default kwok plays the kubelet, so pods run no containers and
are marked ready by kwok (the scale scenarios); ``running_cluster(...,
real_node=True)`` adds the sandbox's real node, whose pods run nginx for real
(tests/e2e/test_real_node.py; one per host). Sandboxes are started and stopped
through the sandbox's one entry point, ``sandbox/sandbox.sh``.

``Clusters`` hands out the clusters of a test session; ``external_cluster``
is a cluster the suite did not start (``E2E_KUBECONFIG``, see
tests/e2e/conftest.py), with the Docker engine of ``DOCKER_HOST``.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from pulumi import automation as auto

from components.values import default_namespace
from project import NAME

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO / "sandbox"
#: The sandbox's one entry point (``sandbox/sandbox.sh --help``): every sandbox command goes through it.
SANDBOX_CLI = SANDBOX_DIR / "sandbox.sh"
#: The Docker engine a cluster the suite did not start builds in, when ``DOCKER_HOST`` is not set: Docker's default.
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
#: The app's version in this checkout (``app/VERSION``): the tag a release builds.
APP_VERSION = (REPO / "app" / "VERSION").read_text(encoding="utf-8").strip()
#: The language host and its exec shim: the only binaries the suite puts on the CLI's PATH.
LANGUAGE_HOST = ("pulumi-language-python", "pulumi-language-python-exec")
#: kwok never marks pods of an image whose tag ends with this ready (sandbox/kwok-stages.yaml).
BROKEN_SUFFIX = "-broken"
#: The dev stack's rollout shape (Pulumi.yaml defaults and Pulumi.dev.yaml), as the e2e suite and bench expect it.
REPLICAS, MAX_SURGE, MAX_UNAVAILABLE, MIN_READY_SECONDS = 10, 1, 1, 3
#: The rollout floor: ceil(replicas / (maxSurge + maxUnavailable)) batches of minReadySeconds.
ROLLOUT_FLOOR = math.ceil(REPLICAS / (MAX_SURGE + MAX_UNAVAILABLE)) * MIN_READY_SECONDS


def sandbox_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``sandbox/sandbox.sh <args>`` with this process's environment plus ``env``; never raises on its exit status."""
    return subprocess.run(
        ["bash", str(SANDBOX_CLI), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tools_dir() -> Path:
    """The per-user cache directory of the sandbox tools (built or not)."""
    done = sandbox_cli("tools-path")
    if done.returncode != 0:
        raise RuntimeError(f"sandbox/sandbox.sh tools-path failed: {done.stderr.strip()}")
    return Path(done.stdout.strip())


def tools_built() -> bool:
    return (tools_dir() / ".complete").is_file()


def _checked(argv: list[str], *, env: dict[str, str] | None, timeout: float) -> str:
    """The command's stdout; its stderr in the error when it fails."""
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} {' '.join(argv[1:])} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Cluster:
    """A running cluster, reached only through its own kubeconfig, and the Docker engine that builds for it."""

    kubeconfig: Path
    kubectl_bin: Path
    docker_host: str
    #: ``SANDBOX_NAME`` and ``KWOK_WORKDIR`` of a sandbox the suite started; None for a cluster it did not.
    sandbox: dict[str, str] | None = None

    @property
    def external(self) -> bool:
        """Not a sandbox of the suite's own: someone else's cluster (E2E_KUBECONFIG), to be left as it was found."""
        return self.sandbox is None

    def docker(self, *args: str) -> str:
        """The docker client against this cluster's engine only."""
        return _checked(["docker", *args], env={**os.environ, "DOCKER_HOST": self.docker_host}, timeout=120)

    def images(self) -> set[str]:
        """``repository:tag`` of every image in this cluster's engine."""
        return set(self.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split())

    def kubectl(self, *args: str, timeout: float = 60) -> str:
        return _checked([str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args], env=None, timeout=timeout)

    def get(self, kind: str, namespace: str, *extra: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, "-n", namespace, "-o", "json", *extra)))

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        scope = ["-n", namespace] if namespace else []
        return self.kubectl("get", kind, name, *scope, "--ignore-not-found", "-o", "name").strip() != ""


@contextmanager
def running_cluster(name: str, workdir: Path, *, real_node: bool = False) -> Iterator[Cluster]:
    """Start a sandbox cluster of its own (name, work dir), yield it, then delete it.

    ``real_node``: also start the sandbox's real node (sandbox/node-up.sh), so pods run for real;
    by default (False) every node is simulated by kwok. Only one real node runs per host.

    It is deleted even when starting it failed half-way (a cluster up, its Docker engine not), so
    a failed start leaves no process, bridge or mount behind.
    """
    names = {"SANDBOX_NAME": name, "KWOK_WORKDIR": str(workdir)}
    try:
        started = sandbox_cli("up", env={**names, "SANDBOX_NODE": "1" if real_node else "0"}, timeout=600)
        if started.returncode != 0:
            raise RuntimeError(f"sandbox/sandbox.sh up failed:\n{started.stderr}")
        kubeconfig = Path(started.stdout.strip().splitlines()[-1])
        # sandbox/docker-common.sh: the engine of cluster <name> lives in $KWOK_WORKDIR/docker/<name>.
        docker_host = f"unix://{workdir / 'docker' / name / 'docker.sock'}"
        yield Cluster(kubeconfig, tools_dir() / "bin" / "kubectl", docker_host, sandbox=names)
    finally:
        sandbox_cli("down", env=names, timeout=300)


def external_cluster(kubeconfig: Path) -> Cluster:
    """The cluster ``kubeconfig`` names (its current context), with the Docker engine of ``DOCKER_HOST``.

    The suite neither starts nor deletes it. Both must answer, or this says which does not.
    """
    docker_host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    cluster = Cluster(kubeconfig, tools_dir() / "bin" / "kubectl", docker_host)
    if not kubeconfig.is_file():
        raise RuntimeError(f"no kubeconfig at {kubeconfig}")
    try:
        cluster.kubectl("get", "--raw", "/readyz", timeout=30)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"the cluster of {kubeconfig} does not answer: {error}") from None
    try:
        cluster.docker("version", "--format", "{{.Server.Version}}")
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"the Docker engine of DOCKER_HOST ({docker_host}) does not answer: {error}") from None
    return cluster


class Clusters:
    """The clusters of one test session, each started on first use and deleted when the session ends.

    Without ``external``, each is a sandbox of the suite's own: one with every node simulated by
    kwok, and one with the host's real node. They are named after this process and live in work
    dirs of its own (``workdir(kind)``), so sessions side by side (the xdist workers) and a sandbox
    started by hand never share one. With ``external`` (a kubeconfig), every scenario runs on that
    one cluster and nothing is started or deleted; it has no real node of the suite's.
    """

    def __init__(self, workdir: Callable[[str], Path], external: Path | None = None) -> None:
        self._workdir = workdir
        self.external = external
        self._workdirs: dict[str, Path] = {}
        self._clusters: dict[bool, Cluster] = {}
        # Why a cluster could not be had: said again to every later caller rather than tried again.
        self._failures: dict[bool, str] = {}
        #: ``sandbox/sandbox.sh host-state`` just before the real node's sandbox started (None: not started).
        self.host_before_real_node: str | None = None
        self._running = ExitStack()

    def sandbox_env(self, *, real_node: bool = False) -> dict[str, str]:
        """``SANDBOX_NAME`` and ``KWOK_WORKDIR`` of that sandbox (started or not), for ``sandbox/sandbox.sh``."""
        kind = "node" if real_node else "kwok"
        if kind not in self._workdirs:
            self._workdirs[kind] = self._workdir(kind)
        return {"SANDBOX_NAME": f"k8s-demo-{kind}-{os.getpid()}", "KWOK_WORKDIR": str(self._workdirs[kind])}

    def get(self, *, real_node: bool = False) -> Cluster:
        """The cluster: kwok's by default, the real node's with ``real_node``; started on first use.

        Raises RuntimeError, with the reason, when it cannot be had (the same reason each time).
        """
        if real_node in self._failures:
            raise RuntimeError(self._failures[real_node])
        if real_node not in self._clusters:
            try:
                self._clusters[real_node] = self._start(real_node)
            except RuntimeError as error:
                self._failures[real_node] = str(error)
                raise
        return self._clusters[real_node]

    def _start(self, real_node: bool) -> Cluster:
        if self.external is not None:
            if real_node:
                raise RuntimeError(f"{self.external} names a cluster the suite did not start: it has no real node")
            return external_cluster(self.external)
        names = self.sandbox_env(real_node=real_node)
        if real_node:
            # The real node changes the host (sysctls, iptables, mounts); whichever file starts it, the state
            # before is what `make sandbox-down` must restore at the end (test_real_node.py checks it).
            before = sandbox_cli("host-state", env=names)
            if before.returncode != 0:
                raise RuntimeError(f"sandbox/sandbox.sh host-state failed:\n{before.stderr}")
            self.host_before_real_node = before.stdout
        running = running_cluster(names["SANDBOX_NAME"], Path(names["KWOK_WORKDIR"]), real_node=real_node)
        return self._running.enter_context(running)

    def __enter__(self) -> Clusters:
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.close()


class Project:
    """A throwaway copy of the project with its own file state backend, driven by the real CLI.

    The CLI runs the copy's ``__main__.py`` through the language host, with the
    suite's own venv as the copy's ``.venv`` (where ``Pulumi.yaml`` looks), as
    ``make up`` does on a user's machine.

    On a cluster the suite did not start (``Cluster.external``), a stack is
    refused when its namespace is already there, as it is someone else's, and
    ``close()`` deletes the namespaces of this copy's stacks.
    """

    def __init__(self, workdir: Path, cluster: Cluster) -> None:
        self.dir = workdir / "project"
        self.cluster = cluster
        #: The stacks this copy created, in order.
        self.stacks: list[str] = []
        shutil.copytree(
            REPO,
            self.dir,
            ignore=shutil.ignore_patterns(".git", ".venv*", "build", "__pycache__", ".*_cache", ".pulumi-state"),
        )
        (self.dir / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        state = workdir / "state"
        state.mkdir()
        tools = tools_dir()
        # The language host goes on PATH, where the CLI looks for it; providers come from PULUMI_HOME only
        # (not from PATH: the Automation API puts the CLI's own directory, with the providers, on it).
        host_dir = workdir / "language-host"
        host_dir.mkdir()
        for name in LANGUAGE_HOST:
            (host_dir / name).symlink_to(tools / "bin" / name)
        self.env = {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": "e2e",
            "PULUMI_HOME": str(tools / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PATH": os.pathsep.join([str(host_dir), os.environ.get("PATH", "")]),
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            # Belt and braces: even a provider that ignored kubernetes:kubeconfig would find only the sandbox.
            "KUBECONFIG": str(cluster.kubeconfig),
            # The Docker provider builds in the sandbox's engine, never in another one.
            "DOCKER_HOST": cluster.docker_host,
        }
        self.command = auto.PulumiCommand(root=str(tools), skip_version_check=True)
        self.workspace = auto.LocalWorkspace(work_dir=str(self.dir), env_vars=self.env, pulumi_command=self.command)

    def stack(self, name: str, *, kubeconfig_config: bool = True) -> auto.Stack:
        """Select or create a stack; by default point ``kubernetes:kubeconfig`` at the sandbox."""
        if name not in self.stacks:
            self._claim(name)
        selected = auto.Stack.create_or_select(name, self.workspace)
        if kubeconfig_config:
            selected.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(self.cluster.kubeconfig)))
        return selected

    def _claim(self, stack: str) -> None:
        namespace = default_namespace(NAME, stack)
        if self.cluster.external and self.cluster.exists("namespace", namespace):
            raise RuntimeError(
                f"namespace {namespace} is already on the cluster of {self.cluster.kubeconfig}: stack {stack} would "
                "take it over, and the suite deletes its namespaces when it is done. Delete it first, or point "
                "E2E_KUBECONFIG at another cluster."
            )
        self.stacks.append(stack)

    def close(self) -> None:
        """On a cluster the suite did not start, delete the namespaces of this copy's stacks; wait till they are gone.

        The suite's own sandboxes go whole, namespaces and all, when the session ends.
        """
        if not self.cluster.external:
            return
        for stack in self.stacks:
            namespace = default_namespace(NAME, stack)
            self.cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--timeout=240s", timeout=300)

    def write_app(self, version: str, greeting: str) -> None:
        """Edit the copy's app as the walkthrough does: ``echo <version> > app/VERSION``, the page's greeting."""
        (self.dir / "app" / "VERSION").write_text(f"{version}\n", encoding="utf-8")
        page = (REPO / "app" / "index.html").read_text(encoding="utf-8")
        (self.dir / "app" / "index.html").write_text(page.replace("Hello Kubernetes!", greeting), encoding="utf-8")

    def restore_app(self) -> None:
        """``git checkout app/``: the app as committed."""
        shutil.copytree(REPO / "app", self.dir / "app", dirs_exist_ok=True)


@dataclass
class Sample:
    """One observation of the Deployment and its pods during a rollout."""

    available: int
    pods: int
    images: frozenset[str]


@dataclass
class RolloutWatcher:
    """Samples the Deployment and its (non-terminating) pods in a namespace until stopped."""

    cluster: Cluster
    namespace: str
    deployment: str
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        items = self.cluster.get("deployment,pods", self.namespace)["items"]
        deployment = next(i for i in items if i["kind"] == "Deployment" and i["metadata"]["name"] == self.deployment)
        pods = [i for i in items if i["kind"] == "Pod" and not i["metadata"].get("deletionTimestamp")]
        status = deployment.get("status", {})
        self.samples.append(
            Sample(
                available=int(status.get("availableReplicas", 0)),
                pods=len(pods),
                images=frozenset(c["image"] for p in pods for c in p["spec"]["containers"]),
            )
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except (RuntimeError, StopIteration, KeyError) as error:  # keep sampling; report at the end
                self.errors.append(repr(error))
            self._stop.wait(self.interval)

    def __enter__(self) -> RolloutWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def min_available(self) -> int:
        return min(s.available for s in self.samples)

    @property
    def max_pods(self) -> int:
        return max(s.pods for s in self.samples)


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@contextmanager
def recording_pulumi(command: str) -> Iterator[queue.Queue[subprocess.Popen[str]]]:
    """Record each ``pulumi <command>`` process the Automation API starts while this is open.

    Tests signal the recorded process object rather than a PID found in /proc:
    under a PID namespace, /proc can list PIDs this process cannot signal.
    """
    started: queue.Queue[subprocess.Popen[str]] = queue.Queue()

    class Recording(subprocess.Popen[str]):
        # Passes Popen's many overloads through unchanged.
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:  # noqa: ANN401
            super().__init__(args, *rest, **kwargs)
            if isinstance(args, list) and Path(str(args[0])).name == "pulumi" and command in args[1:]:
                started.put(self)

    # The Automation API looks up subprocess.Popen when it runs a command.
    with mock.patch.object(subprocess, "Popen", Recording):
        yield started


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.25, what: str = "condition") -> None:
    """Poll ``condition()`` until truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

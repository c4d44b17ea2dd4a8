"""Drives the real Pulumi engine against the local sandbox cluster, for the e2e suite and ``make bench``.

Everything on the user's path is real: the Pulumi CLI runs the project's own
``__main__.py`` from a project directory through the Python language host
(``pulumi-language-python``), the Docker provider builds ``app/`` in the
sandbox's own Docker engine, and the Kubernetes provider deploys to the API
server, etcd, controller manager (Deployment and ReplicaSet controllers) and
scheduler. By default kwok plays the kubelet, so pods run no containers and
are marked ready by kwok (the scale scenarios); ``running_cluster(...,
real_node=True)`` adds the sandbox's real node, whose pods run nginx for real
(tests/e2e/test_real_node.py; one per host).
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from pulumi import automation as auto

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO / "sandbox"
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


def tools_dir() -> Path:
    """The per-user cache directory of the sandbox tools (built or not)."""
    out = subprocess.run([str(SANDBOX_DIR / "tools-path.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


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
    """A running sandbox cluster, reached only through its own kubeconfig, and its own Docker engine."""

    kubeconfig: Path
    kubectl_bin: Path
    docker_host: str

    def docker(self, *args: str) -> str:
        """The docker client against the sandbox's engine only."""
        return _checked(["docker", *args], env={**os.environ, "DOCKER_HOST": self.docker_host}, timeout=120)

    def images(self) -> set[str]:
        """``repository:tag`` of every image in the sandbox's engine."""
        return set(self.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split())

    def kubectl(self, *args: str) -> str:
        return _checked([str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args], env=None, timeout=60)

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
    env = {**os.environ, "SANDBOX_NAME": name, "KWOK_WORKDIR": str(workdir), "SANDBOX_NODE": "1" if real_node else "0"}
    try:
        started = subprocess.run(
            ["bash", str(SANDBOX_DIR / "up.sh")], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if started.returncode != 0:
            raise RuntimeError(f"sandbox/up.sh failed:\n{started.stderr}")
        kubeconfig = Path(started.stdout.strip().splitlines()[-1])
        # sandbox/docker-common.sh: the engine of cluster <name> lives in $KWOK_WORKDIR/docker/<name>.
        docker_host = f"unix://{workdir / 'docker' / name / 'docker.sock'}"
        yield Cluster(kubeconfig=kubeconfig, kubectl_bin=tools_dir() / "bin" / "kubectl", docker_host=docker_host)
    finally:
        subprocess.run(["bash", str(SANDBOX_DIR / "down.sh")], env=env, capture_output=True, timeout=300, check=False)


class Project:
    """A throwaway copy of the project with its own file state backend, driven by the real CLI.

    The CLI runs the copy's ``__main__.py`` through the language host, with the
    suite's own venv as the copy's ``.venv`` (where ``Pulumi.yaml`` looks), as
    ``make up`` does on a user's machine.
    """

    def __init__(self, workdir: Path, cluster: Cluster) -> None:
        self.dir = workdir / "project"
        self.cluster = cluster
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
        selected = auto.Stack.create_or_select(name, self.workspace)
        if kubeconfig_config:
            selected.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(self.cluster.kubeconfig)))
        return selected

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

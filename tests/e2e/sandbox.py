"""Drives the real Pulumi engine against the local sandbox cluster, for the e2e suite and ``make bench``.

What is real: the Pulumi CLI and engine, the Kubernetes provider plugin, the
API server, etcd, controller manager (Deployment and ReplicaSet controllers)
and scheduler. What is simulated: kwok plays the kubelet, so pods run no
containers and are marked ready by kwok.

The Python language host (``pulumi-language-python``) cannot be built here
(its Go module is not served by the module proxy), so the program runs through
the Automation API's inline mode: the Python SDK serves the language runtime
itself and the real CLI connects to it (``pulumi up --client=…``). Everything
after the program's resource registrations is the ordinary engine path.
"""

from __future__ import annotations

import json
import math
import os
import queue
import runpy
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
#: The e2e copy of the app declares this version, so tags 0.1, 0.2, … are never built.
UNBUILT_APP_VERSION = "99.0-e2e"
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


@dataclass
class Cluster:
    """A running sandbox cluster, reached only through its own kubeconfig."""

    kubeconfig: Path
    kubectl_bin: Path

    def kubectl(self, *args: str) -> str:
        result = subprocess.run(
            [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def get(self, kind: str, namespace: str, *extra: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, "-n", namespace, "-o", "json", *extra)))

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        scope = ["-n", namespace] if namespace else []
        return self.kubectl("get", kind, name, *scope, "--ignore-not-found", "-o", "name").strip() != ""


@contextmanager
def running_cluster(name: str, workdir: Path) -> Iterator[Cluster]:
    """Start a sandbox cluster of its own (name, work dir), yield it, then delete it."""
    env = {**os.environ, "SANDBOX_NAME": name, "KWOK_WORKDIR": str(workdir)}
    started = subprocess.run(
        ["bash", str(SANDBOX_DIR / "up.sh")], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        raise RuntimeError(f"sandbox/up.sh failed:\n{started.stderr}")
    kubeconfig = Path(started.stdout.strip().splitlines()[-1])
    try:
        yield Cluster(kubeconfig=kubeconfig, kubectl_bin=tools_dir() / "bin" / "kubectl")
    finally:
        subprocess.run(["bash", str(SANDBOX_DIR / "down.sh")], env=env, capture_output=True, timeout=300, check=False)


class Project:
    """A throwaway copy of the project with its own file state backend, driven by the real CLI."""

    def __init__(self, workdir: Path, cluster: Cluster) -> None:
        self.dir = workdir / "project"
        self.cluster = cluster
        shutil.copytree(
            REPO,
            self.dir,
            ignore=shutil.ignore_patterns(".git", ".venv*", "build", "__pycache__", ".*_cache", ".pulumi-state"),
        )
        (self.dir / "app" / "VERSION").write_text(f"{UNBUILT_APP_VERSION}\n")
        state = workdir / "state"
        state.mkdir()
        tools = tools_dir()
        self.env = {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": "e2e",
            "PULUMI_HOME": str(tools / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # The provider binary sits beside the CLI on PATH; use the installed plugin, as users do.
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            # Belt and braces: even a provider that ignored kubernetes:kubeconfig would find only the sandbox.
            "KUBECONFIG": str(cluster.kubeconfig),
        }
        self.command = auto.PulumiCommand(root=str(tools), skip_version_check=True)
        self._main = self.dir / "__main__.py"
        self.workspace = auto.LocalWorkspace(
            work_dir=str(self.dir), program=self.program, env_vars=self.env, pulumi_command=self.command
        )

    def program(self) -> None:
        """The project's own ``__main__.py`` (of the copy), run by the inline language runtime."""
        runpy.run_path(str(self._main), run_name="__main__")

    def stack(self, name: str, *, kubeconfig_config: bool = True) -> auto.Stack:
        """Select or create a stack; by default point ``kubernetes:kubeconfig`` at the sandbox."""
        selected = auto.Stack.create_or_select(name, self.workspace)
        if kubeconfig_config:
            selected.set_config("kubernetes:kubeconfig", auto.ConfigValue(str(self.cluster.kubeconfig)))
        return selected

    def policy_workspace(self) -> auto.LocalWorkspace:
        """A workspace that finds the policy-pack starter (sandbox/pulumi-analyzer-policy-python) on PATH.

        The engine looks for that analyzer only on PATH, so ambient plugins are allowed here.
        """
        env = {k: v for k, v in self.env.items() if k != "PULUMI_IGNORE_AMBIENT_PLUGINS"}
        python_bin = Path(sys.executable).parent
        env["PATH"] = os.pathsep.join([str(SANDBOX_DIR), str(python_bin), os.environ.get("PATH", "")])
        return auto.LocalWorkspace(
            work_dir=str(self.dir), program=self.program, env_vars=env, pulumi_command=self.command
        )


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

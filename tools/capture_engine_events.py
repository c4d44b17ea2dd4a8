"""Record the engine events of real previews and updates in the sandbox: the unit tests' fixtures.

Runs the real Pulumi CLI, the Python language host and the Kubernetes provider
against a sandbox cluster of its own (kwok only, no Docker engine:
``SANDBOX_DOCKER=0``), through ``ops.engine``, the same door the operator
commands use. The project is a throwaway copy whose app/VERSION is not a
deployed tag, so nothing is built and no capture depends on an image build.

Writes, under ``--out`` (default tests/data):

- ``pr_comment/<case>.events.jsonl``: the previews (``--refresh``, the policy pack)
  that tests/test_preview_comment.py renders into the goldens: first-deploy,
  release, rollback, replicas, drift, policy-violation, failed-config;
- ``engine/up-release.events.jsonl``: a successful release, 0.1 -> 0.2;
- ``engine/up-failed-rollout.events.jsonl``: a release whose pods never become ready
  (kwok never readies a tag ending in ``-broken``, sandbox/kwok-stages.yaml), and
  ``engine/up-failed-rollout.state.json``: the Deployment as the stack's state
  recorded it after that failure (``pulumi stack export``).

Each line is one engine event exactly as the engine sent it. The display's own
text (``stdoutEvent``) is left out: nothing reads it, and it repeats the rest.

Needs the sandbox tools (``make sandbox-tools``) and ``make venv``. Other
engineers run sandboxes too, so run it under the e2e lock::

    flock /tmp/k8s-demo-e2e.lock .venv/bin/python -m tools.capture_engine_events
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from ops import engine
from project import DEPLOYMENT_TYPE, ROOT, config_key

#: app/VERSION in the project copy: a tag no capture deploys, so nothing is built.
CAPTURE_APP_VERSION = "99.0-capture"
#: What absolute paths of the throwaway run become in the recordings, so they do not differ from run to run.
STABLE_DIR = "/tmp/capture"
#: Seconds a new pod may take to become ready in the failed rollout: it fails within about 35 s, not 4 minutes.
SHORT_POD_READY = 2
#: The project copy leaves these out: git, the venvs (linked instead), build output and local state.
_NOT_COPIED = shutil.ignore_patterns(".git", ".venv*", "build", ".pulumi-state", "__pycache__")


def tools_dir() -> Path:
    """The sandbox tools' cache (``sandbox/tools-path.sh``)."""
    return Path(
        subprocess.run(
            [str(ROOT / "sandbox" / "tools-path.sh")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )


class Recording:
    """Keeps every engine event as the engine sent it, while the Automation API parses it.

    The Automation API hands ``on_event`` parsed objects, which drop fields
    (the summary's result, for one); the recordings keep the JSON itself, so
    the tests parse it exactly as the API does.
    """

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[Recording]:
        """Record while inside."""
        descriptor = auto.EngineEvent.__dict__["from_json"]
        parse = auto.EngineEvent.from_json

        def recording(data: dict[str, Any]) -> auto.EngineEvent:
            with self._lock:
                self.events.append(data)
            return parse(data)

        # The API parses each event with EngineEvent.from_json, looked up at each call: the one place to see its JSON.
        auto.EngineEvent.from_json = recording  # type: ignore[method-assign]
        try:
            yield self
        finally:
            setattr(auto.EngineEvent, "from_json", descriptor)  # noqa: B010  # puts the classmethod itself back

    def lines(self, replacements: Mapping[str, str]) -> list[str]:
        """The events in the engine's order, one JSON line each, with ``replacements`` applied to the text."""
        kept = sorted((e for e in self.events if "stdoutEvent" not in e), key=lambda e: int(e.get("sequence", 0)))
        return [_replaced(json.dumps(event, separators=(",", ":")), replacements) for event in kept]


def _replaced(text: str, replacements: Mapping[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


class Capture:
    """A sandbox cluster, a project copy on a file backend, and where the recordings go."""

    def __init__(self, work: Path, out: Path, kubeconfig: str) -> None:
        self.work = work
        self.out = out
        self.kubeconfig = kubeconfig
        self.project = work / "project"
        self.replacements = {kubeconfig: f"{STABLE_DIR}/kubeconfig", str(work): STABLE_DIR}

    def stack(self, name: str) -> auto.Stack:
        opened = engine.open_stack(name, create=True, work_dir=self.project)
        engine.set_config(opened, "kubernetes:kubeconfig", self.kubeconfig)
        return opened

    def write(self, path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")

    def preview(self, case: str, stack: auto.Stack) -> engine.Report:
        """One preview as the preview job runs it: a refresh first, the policy pack."""
        with Recording().active() as recording:
            report = engine.preview(stack, refresh=True, policy_packs=["policy"])
        self.write(self.out / "pr_comment" / f"{case}.events.jsonl", recording.lines(self.replacements))
        print(f"captured preview {case} ({stack.name}): {'failed' if report.failed else 'passed'}", file=sys.stderr)
        return report

    def up(self, stack: auto.Stack, message: str, case: str | None = None) -> engine.Report:
        """One update; recorded as ``engine/<case>.events.jsonl`` when ``case`` is given."""
        with Recording().active() as recording:
            report = engine.up(stack, message=message)
        if case is not None:
            self.write(self.out / "engine" / f"{case}.events.jsonl", recording.lines(self.replacements))
        print(f"up {case or message}: {'failed' if report.failed else 'succeeded'}", file=sys.stderr)
        return report

    def kubectl(self, *args: str) -> None:
        subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], check=True, capture_output=True)


def set_config(stack: auto.Stack, key: str, value: str) -> None:
    engine.set_config(stack, config_key(key), value)


def capture_all(capture: Capture) -> None:
    """Every scenario, in the order that builds each one's starting point."""
    dev = capture.stack("dev")
    set_config(dev, "imageTag", "0.1")
    capture.preview("first-deploy", dev)
    if capture.up(dev, "pulumi up: image k8s-demo:0.1, stack dev").failed:
        raise SystemExit("the first deploy failed: nothing else can be captured")

    set_config(dev, "imageTag", "0.2")
    capture.preview("release", dev)
    if capture.up(dev, "pulumi up: image k8s-demo:0.2, stack dev", "up-release").failed:
        raise SystemExit("the release failed: it is recorded as a successful one")

    set_config(dev, "imageTag", "0.1")
    capture.preview("rollback", dev)
    set_config(dev, "imageTag", "0.2")

    set_config(dev, "replicas", "12")
    capture.preview("replicas", dev)
    set_config(dev, "replicas", "10")

    # The cluster goes back to 0.1 behind Pulumi's back; the stack still says 0.2.
    capture.kubectl("-n", "k8s-demo-dev", "rollout", "undo", "deployment", "k8s-demo-deployment")
    capture.kubectl("-n", "k8s-demo-dev", "rollout", "status", "deployment", "k8s-demo-deployment", "--timeout=120s")
    capture.preview("drift", dev)

    # A tag whose pods never become ready, with a short pod-ready timeout: the rollout fails at its deadline.
    set_config(dev, "podReadyTimeoutSeconds", str(SHORT_POD_READY))
    set_config(dev, "imageTag", "0.3-broken")
    failed = capture.up(dev, "pulumi up: image k8s-demo:0.3-broken, stack dev", "up-failed-rollout")
    if not failed.failed:
        raise SystemExit("the broken release succeeded: kwok readied a -broken tag")
    deployments = [r for r in engine.resources(dev) if r.get("type") == DEPLOYMENT_TYPE]
    state = _replaced(json.dumps(deployments, indent=1, sort_keys=True), capture.replacements)
    (capture.out / "engine" / "up-failed-rollout.state.json").write_text(state + "\n", encoding="utf-8")
    status = (deployments[0].get("outputs") or {}).get("status") if deployments else None
    print(f"the state's Deployment status after the failed rollout: {json.dumps(status)}", file=sys.stderr)

    # A stack without a stack file gets 1 replica: replicas-outside-dev refuses it.
    staging = capture.stack("staging")
    set_config(staging, "imageTag", "0.2")
    capture.preview("policy-violation", staging)

    # Three bad values at once: the program lists all of them.
    set_config(staging, "imageTag", "latest")
    set_config(staging, "maxSurge", "1.5")
    set_config(staging, "nodePort", "80")
    capture.preview("failed-config", staging)


def main(argv: list[str] | None = None) -> int:
    """Start a sandbox of its own, capture every scenario into ``--out``, remove the sandbox."""
    top = argparse.ArgumentParser(prog="python -m tools.capture_engine_events", description=__doc__.splitlines()[0])
    top.add_argument("--out", type=Path, default=ROOT / "tests" / "data", help="where the recordings go")
    args = top.parse_args(argv)
    tools = tools_dir()
    if not (tools / ".complete").exists():
        print(f"sandbox tools not built in {tools}: run make sandbox-tools", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="engine-capture."))
    sandbox = {
        "SANDBOX_NAME": f"engine-capture-{os.getpid()}",
        "KWOK_WORKDIR": str(work / "kwok"),
        "SANDBOX_DOCKER": "0",
    }
    os.environ.update(sandbox)
    try:
        started = subprocess.run(["bash", str(ROOT / "sandbox" / "up.sh")], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            print(started.stderr, file=sys.stderr)
            return 1
        kubeconfig = started.stdout.strip().splitlines()[-1]
        project = work / "project"
        shutil.copytree(ROOT, project, ignore=_NOT_COPIED, symlinks=True)
        (project / ".venv").symlink_to(ROOT / ".venv")
        (project / "app" / "VERSION").write_text(f"{CAPTURE_APP_VERSION}\n", encoding="utf-8")
        (work / "state").mkdir()
        os.environ.update(
            {
                "PULUMI_BACKEND_URL": f"file://{work / 'state'}",
                "PULUMI_CONFIG_PASSPHRASE": "capture",
                "PULUMI_HOME": str(tools / "pulumi-home"),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
                "KUBECONFIG": kubeconfig,
                "PATH": os.pathsep.join([str(tools / "bin"), os.environ["PATH"]]),
            }
        )
        capture_all(Capture(work, args.out, kubeconfig))
    finally:
        subprocess.run(["bash", str(ROOT / "sandbox" / "down.sh")], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sandbox benchmark (``make bench``): one run, one table, ratios.

1. Wall time of ``pulumi up`` for the 0.1 -> 0.2 rollout of the dev stack, against
   the tutorial's way on the same cluster: ``kubectl apply -f`` of the same
   objects (rendered by ``ops.render``) then ``kubectl rollout status``.
2. Each rollout against its floor, ceil(replicas / (maxSurge + maxUnavailable)) * minReadySeconds.
3. A no-op ``pulumi up`` and ``pulumi preview``, as the project runs them (``refresh: always``
   in ``Pulumi.yaml``) and with that option removed: the price of seeing kubectl changes.
4. ``make up`` of a tag that never becomes ready, with ``rollbackOnFailure``:
   from its start to the previous tag fully available again, against its
   floor, the failing rollout's own timeout plus a rollout of the old tag.

Needs the sandbox tools (``make sandbox-tools``); starts and removes its own cluster.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from pulumi import automation as auto

from components.settings import PROJECT, StackConfig, load_settings
from components.webapp import DEPLOYMENT_NAME
from ops.render import kubernetes_objects
from tests.e2e.operator import make
from tests.e2e.sandbox import (
    BROKEN_SUFFIX,
    MAX_SURGE,
    MAX_UNAVAILABLE,
    MIN_READY_SECONDS,
    REPLICAS,
    ROLLOUT_FLOOR,
    Cluster,
    Project,
    running_cluster,
    tools_built,
    tools_dir,
)
from tests.e2e.test_e2e import SHORT_POD_READY
from tools.mock_engine import project_key, run_program, stack_config

KUBECTL_NAMESPACE = "k8s-demo-kubectl"
#: The bench copy's app version: no tag it deploys equals it, so Pulumi builds nothing, as kubectl doesn't.
BENCH_APP_VERSION = "99.0-bench"


def timed(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


@contextmanager
def refresh_option_removed(project: Project) -> Iterator[None]:
    """The project copy's ``Pulumi.yaml`` without ``options: refresh: always``, for a side-by-side timing."""
    path = project.dir / "Pulumi.yaml"
    original = path.read_text(encoding="utf-8")
    document = yaml.safe_load(original)
    document.pop("options")
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


def manifests(tag: str, path: Path) -> Path:
    """The dev stack's objects at ``tag``, in a namespace of their own, as one kubectl file."""
    config = {**stack_config("dev"), project_key("imageTag"): tag, project_key("namespace"): KUBECTL_NAMESPACE}
    run = run_program("dev", config)
    path.write_text(yaml.safe_dump_all(kubernetes_objects(run.resources), sort_keys=False))
    return path


def kubectl_release(cluster: Cluster, tag: str, workdir: Path) -> None:
    cluster.kubectl("apply", "-f", str(manifests(tag, workdir / f"k8s-demo-{tag}.yaml")))
    cluster.kubectl("rollout", "status", f"deployment/{DEPLOYMENT_NAME}", "-n", KUBECTL_NAMESPACE, "--timeout=300s")


def failing_rollout_timeout() -> int:
    """Pulumi's await timeout for the dev stack with the short pod-ready budget, from the settings themselves."""
    config = {**stack_config("dev"), project_key("podReadyTimeoutSeconds"): str(SHORT_POD_READY)}
    settings = load_settings(StackConfig(PROJECT, config), project=PROJECT, stack="dev", app_version=BENCH_APP_VERSION)
    return settings.rollout_timeout_seconds


def auto_rollback(project: Project, stack: auto.Stack) -> float:
    """``make up`` of a never-ready tag over the running one: seconds until the old tag is fully available again.

    ``make up`` returns only after the rollback's own rollout completed, so its wall time is that span.
    """
    running = stack.get_config("imageTag").value
    stack.set_config("podReadyTimeoutSeconds", auto.ConfigValue(str(SHORT_POD_READY)))
    stack.set_config("imageTag", auto.ConfigValue(f"{running}{BROKEN_SUFFIX}"))
    start = time.monotonic()
    done = make(project, "up", "STACK=dev", "ARGS=--yes")
    elapsed = time.monotonic() - start
    if done.returncode == 0 or f"(tag {running}), recorded as release" not in done.stderr:
        raise RuntimeError(f"make up did not fail and roll back to {running}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> int:
    if not tools_built():
        print(f"sandbox tools are not built in {tools_dir()}: run `make sandbox-tools` first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="k8s-demo-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "kwok").mkdir()
        with running_cluster("k8s-demo-bench", workdir / "kwok") as cluster:
            project = Project(workdir, cluster)
            project.write_app(BENCH_APP_VERSION, "Hello Kubernetes!")
            stack = project.stack("dev")
            stack.set_config("imageTag", auto.ConfigValue("0.1"))
            stack.up()
            stack.set_config("imageTag", auto.ConfigValue("0.2"))
            pulumi_rollout = timed(stack.up)
            noop_up = timed(stack.up)
            noop_preview = timed(stack.preview)
            with refresh_option_removed(project):
                noop_up_stale = timed(stack.up)
                noop_preview_stale = timed(stack.preview)
            rolled_back = auto_rollback(project, stack)

            # The tutorial's way, same cluster, same objects, own namespace.
            kubectl_release(cluster, "0.1", workdir)
            kubectl_rollout = timed(lambda: kubectl_release(cluster, "0.2", workdir))

    floor_label = f"rollout floor ceil({REPLICAS}/{MAX_SURGE + MAX_UNAVAILABLE}) x {MIN_READY_SECONDS} s"
    rows = [
        ("pulumi up, rollout 0.1 -> 0.2", pulumi_rollout, f"{pulumi_rollout / kubectl_rollout:.2f} x kubectl"),
        ("kubectl apply + rollout status, same", kubectl_rollout, "1.00 x kubectl"),
        (floor_label, float(ROLLOUT_FLOOR), ""),
        ("pulumi up rollout / floor", pulumi_rollout, f"{pulumi_rollout / ROLLOUT_FLOOR:.2f} x floor"),
        ("kubectl rollout / floor", kubectl_rollout, f"{kubectl_rollout / ROLLOUT_FLOOR:.2f} x floor"),
        ("pulumi up, no change", noop_up, f"{noop_up / pulumi_rollout:.2f} x rollout up"),
        ("pulumi preview, no change", noop_preview, f"{noop_preview / pulumi_rollout:.2f} x rollout up"),
        ("pulumi up, no change, no refresh", noop_up_stale, f"refresh costs {noop_up / noop_up_stale:.2f} x"),
        (
            "pulumi preview, no change, no refresh",
            noop_preview_stale,
            f"refresh costs {noop_preview / noop_preview_stale:.2f} x",
        ),
    ]
    failing_timeout = failing_rollout_timeout()
    rollback_floor = failing_timeout + ROLLOUT_FLOOR
    rollback_label = f"floor: failing timeout {failing_timeout} s + rollout"
    rows.append(("make up, failed rollout -> rolled back", rolled_back, f"{rolled_back / rollback_floor:.2f} x floor"))
    rows.append((rollback_label, float(rollback_floor), ""))
    print(
        f"sandbox benchmark (kwok cluster, {REPLICAS} replicas, maxSurge {MAX_SURGE}, "
        f"maxUnavailable {MAX_UNAVAILABLE}, minReadySeconds {MIN_READY_SECONDS})"
    )
    print(f"| {'measure':<40} | {'seconds':>7} | {'ratio':<20} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 22}|")
    for label, seconds, ratio in rows:
        print(f"| {label:<40} | {seconds:>7.1f} | {ratio:<20} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

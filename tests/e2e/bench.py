"""Sandbox benchmark (``make bench``): one run, one table, ratios.

1. Wall time of ``make up``'s update (``ops.engine.up``: ``pulumi up`` through the Automation API)
   for the 0.1 -> 0.2 rollout of the dev stack, against the tutorial's way on the same cluster:
   ``kubectl apply -f`` of the same objects (rendered by ``ops.render``) then ``kubectl rollout status``.
2. Each rollout against its floor, ceil(replicas / (maxSurge + maxUnavailable)) * minReadySeconds.
3. A no-op update (``ops.engine.up``) and ``pulumi preview``, as the project runs them (``refresh: always``
   in ``Pulumi.yaml``) and with that option removed: the price of seeing kubectl changes.
4. ``make up`` of a tag that never becomes ready, with ``rollbackOnFailure``:
   from its start to the previous tag fully available again, against its
   floor, the Deployment's progress deadline (when Kubernetes gives up on the
   rollout and ``make up`` stops waiting) plus a rollout of the old tag.
5. Where one no-op update's and one rollout's time goes, from Pulumi's own trace, and each
   lever on that fixed cost A/B (``tests/e2e/bench_levers.py``).

Then on a sandbox with a real node (pods run nginx for real):

6. ``make up``'s update for the 0.1 -> 0.2 rollout against its floor, where each
   batch takes a real pod's start-to-ready time plus minReadySeconds. The
   start-to-ready time is measured on the rollout's own new pods, from the
   API's timestamps (pod creation to its Ready condition, 1 s resolution):
   the median of the ten.
7. Requests served and failed, and p50/p99 latency, during that rollout,
   against the same traffic on the same pods with nothing changing (the
   steady-state baseline), measured just before it.
8. Memory and CPU of the node's components (kubelet, kube-proxy,
   cri-dockerd, the sandbox's dockerd, containerd and shims) at rest.
9. Canary against rolling, two stacks of 4 pods side by side (``make up``):
   the wall time of a good release under each strategy; then the blast
   radius of a build that goes ready but answers 404 on ``/``: the share of
   requests that failed and for how long, under traffic, during ``make up``
   and for CANARY_AFTER seconds after it returned.
10. ``make up`` of a failing release, per cause, with ``rollbackOnFailure``:
   from its start until the previous tag is fully available again, against
   step 4 of the same run (kwok's never-ready tag: the progress deadline plus
   the rollback) and the README's 56.9 s, what every cause cost before the
   diagnosis (Pulumi's await timeout plus the rollback). A missing image and a
   crash loop are terminal (the update stops at once); readiness answering 500
   is not (it waits for the progress deadline). Then a CPU request no node has
   room for, on the running tag: ``make up`` fails at the progress deadline and
   has nothing to roll back; the seconds until it returned.

Needs the sandbox tools (``make sandbox-tools``) and root; starts and removes its own clusters.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import yaml
from pulumi import automation as auto

from components.rollout import RolloutPlan
from components.settings import StackConfig, load_settings
from components.webapp import DEPLOYMENT_NAME
from ops.offline import run_program
from ops.render import kubernetes_objects
from project import NAME, config_key, stack_file_config
from tests.e2e import node_usage
from tests.e2e.bench_levers import bench_levers, engine_up, rollout_breakdown
from tests.e2e.operator import make
from tests.e2e.sandbox import (
    APP_VERSION,
    BROKEN_SUFFIX,
    MAX_SURGE,
    MAX_UNAVAILABLE,
    MIN_READY_SECONDS,
    REPLICAS,
    REPO,
    ROLLOUT_FLOOR,
    Cluster,
    Project,
    running_cluster,
    tools_built,
    tools_dir,
)
from tests.e2e.test_e2e import SHORT_POD_READY, live_pods
from tests.e2e.traffic import Request, Traffic, failures, percentile

KUBECTL_NAMESPACE = "k8s-demo-kubectl"
ROLLOUT_LABEL = "make up's update, rollout 0.1 -> 0.2"
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
    config = {**stack_file_config("dev"), config_key("imageTag"): tag, config_key("namespace"): KUBECTL_NAMESPACE}
    run = run_program("dev", config)
    path.write_text(yaml.safe_dump_all(kubernetes_objects(run.resources), sort_keys=False))
    return path


def kubectl_release(cluster: Cluster, tag: str, workdir: Path) -> None:
    cluster.kubectl("apply", "-f", str(manifests(tag, workdir / f"k8s-demo-{tag}.yaml")))
    cluster.kubectl("rollout", "status", f"deployment/{DEPLOYMENT_NAME}", "-n", KUBECTL_NAMESPACE, "--timeout=300s")


def failing_rollout_timeout() -> int:
    """Pulumi's await timeout for the dev stack with the short pod-ready budget: what a rollout that made no progress
    waited before ``make up`` read Kubernetes' progress deadline."""
    return _short_budget().most_wait_seconds


def _short_budget() -> RolloutPlan:
    config = {**stack_file_config("dev"), config_key("podReadyTimeoutSeconds"): str(SHORT_POD_READY)}
    settings = load_settings(StackConfig(NAME, config), project=NAME, stack="dev", app_version=BENCH_APP_VERSION)
    return settings.rollout


def failing_rollout_deadline() -> int:
    """The dev stack's progressDeadlineSeconds with the short pod-ready budget, from the settings themselves: when
    Kubernetes gives up on a rollout that makes no progress, and ``make up`` with it."""
    return _short_budget().progress_deadline_seconds


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


#: Seconds of steady traffic for the baseline, and of rest for the node's own usage.
BASELINE_SECONDS = 20.0
REST_SECONDS = 20.0


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def start_to_ready(cluster: Cluster, namespace: str, image: str) -> list[float]:
    """Seconds from creation to Ready of each live pod running ``image`` (API timestamps, 1 s resolution)."""
    seconds = []
    for pod in live_pods(cluster, namespace):
        if pod["spec"]["containers"][0]["image"] != image:
            continue
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready" and c["status"] == "True")
        created = _time(pod["metadata"]["creationTimestamp"])
        seconds.append((_time(ready["lastTransitionTime"]) - created).total_seconds())
    return seconds


def traffic_row(label: str, requests: list[Request]) -> str:
    latencies = [r.latency * 1000 for r in requests if not r.failed]
    return (
        f"| {label:<32} | {len(requests):>8} | {len(failures(requests)):>6} "
        f"| {percentile(latencies, 50):>6.1f} | {percentile(latencies, 99):>6.1f} |"
    )


#: What the failed rollout through its automatic rollback took before the diagnosis (README, "Sandbox benchmark").
BEFORE_DIAGNOSIS_SECONDS = 56.9


def broken_build(project: Project, cluster: Cluster, tag: str, old: str, new: str) -> str:
    """Build ``app/`` with ``old`` replaced by ``new`` in its nginx config as ``k8s-demo:<tag>``, in the sandbox's
    engine (no rollout: the timed ``make up`` deploys it by tag); the image."""
    app = project.dir / "build" / f"app-{tag}"
    shutil.copytree(REPO / "app", app, dirs_exist_ok=True)
    conf = app / "nginx.conf"
    text = conf.read_text(encoding="utf-8")
    if old not in text:
        raise RuntimeError(f"{old!r} is not in app/nginx.conf any more: the {tag} build would not fail")
    conf.write_text(text.replace(old, new, 1), encoding="utf-8")
    cluster.docker("build", "-q", "-t", f"k8s-demo:{tag}", str(app))
    return f"k8s-demo:{tag}"


def failing_release(project: Project, stack: auto.Stack, tag: str) -> float:
    """``make up`` of ``tag`` over the running tag: seconds until the running tag is fully available again."""
    running = stack.get_config("imageTag").value
    stack.set_config("imageTag", auto.ConfigValue(tag))
    start = time.monotonic()
    done = make(project, "up", "STACK=dev", "ARGS=--yes")
    elapsed = time.monotonic() - start
    if done.returncode == 0 or f"(tag {running}), recorded as release" not in done.stderr:
        raise RuntimeError(f"make up of {tag} did not fail and roll back to {running}:\n{done.stdout}\n{done.stderr}")
    return elapsed


#: A CPU request (and limit) no node of the sandbox has room for: 64 cores.
NO_ROOM_CPU = "64"


def no_room_release(project: Project, stack: auto.Stack) -> float:
    """``make up`` of a CPU request no node has room for, on the running tag: seconds until it returned, failed at
    Kubernetes' progress deadline (nothing to roll back: the tag is the same). The setting is then put back."""
    for key in ("cpuRequest", "cpuLimit"):
        stack.set_config(key, auto.ConfigValue(NO_ROOM_CPU))
    start = time.monotonic()
    done = make(project, "up", "STACK=dev", "ARGS=--yes")
    elapsed = time.monotonic() - start
    for key in ("cpuRequest", "cpuLimit"):
        stack.remove_config(key)
    stack.up()
    if done.returncode == 0 or "ProgressDeadlineExceeded" not in done.stderr:
        raise RuntimeError(f"make up with no room did not fail at the deadline:\n{done.stdout}\n{done.stderr}")
    return elapsed


def failure_rows(project: Project, cluster: Cluster, stack: auto.Stack, before: float) -> list[str]:
    """Step 10: each cause's failed release through its rollback, against ``before`` (step 4 of this run)."""
    stack.set_config("podReadyTimeoutSeconds", auto.ConfigValue(str(SHORT_POD_READY)))
    crash = broken_build(project, cluster, "0.3-crash", "server_name  _;", "server_name  _;\n    no_such_directive on;")
    unready = broken_build(project, cluster, "0.3-unready", 'return 200 "ok\\n";', "return 500;")
    causes = [
        ("missing image (terminal)", "0.9-missing"),
        ("crash loop (terminal)", crash.split(":", 1)[1]),
        ("readiness answers 500 (deadline)", unready.split(":", 1)[1]),
    ]
    lines = [
        f"failed release -> previous tag fully available, per cause ({REPLICAS} pods, podReadyTimeoutSeconds "
        f"{SHORT_POD_READY}), against kwok's never-ready tag in this run ({before:.1f} s) and the README's "
        f"{BEFORE_DIAGNOSIS_SECONDS} s",
        f"| {'cause':<32} | {'seconds':>7} | {'x this run':>10} | {'x 56.9 s':>8} |",
        f"|{'-' * 34}|{'-' * 9}|{'-' * 12}|{'-' * 10}|",
    ]
    for label, tag in causes:
        seconds = failing_release(project, stack, tag)
        ratios = f"{seconds / before:>10.2f} | {seconds / BEFORE_DIAGNOSIS_SECONDS:>8.2f}"
        lines.append(f"| {label:<32} | {seconds:>7.1f} | {ratios} |")
    seconds = no_room_release(project, stack)
    ratios = f"{seconds / before:>10.2f} | {seconds / BEFORE_DIAGNOSIS_SECONDS:>8.2f}"
    lines.append(f"| {'no room (deadline, no rollback)':<32} | {seconds:>7.1f} | {ratios} |")
    lines.append(
        f"no room: make up returns failed, the running pods untouched; before the diagnosis it waited for Pulumi's "
        f"await timeout, {failing_rollout_timeout()} s, against the progress deadline's {failing_rollout_deadline()} s"
    )
    return lines


def real_node_bench(workdir: Path, before: float) -> list[str]:
    """Steps 6-10 on a sandbox with a real node: the lines of their tables; ``before`` is step 4's seconds."""
    name = "k8s-demo-bench-node"
    kwok = workdir / "node-kwok"
    kwok.mkdir()
    traces = workdir / "traces"
    traces.mkdir()
    with running_cluster(name, kwok, real_node=True) as cluster:
        project = Project(workdir / "node", cluster)
        stack = project.stack("dev")
        # Both images are built first, so the timed rollout deploys an existing tag, as above.
        project.write_app("0.1", "Hello Docker!")
        stack.up()
        project.restore_app()
        stack.up()
        stack.set_config("imageTag", auto.ConfigValue("0.1"))
        stack.up()
        port = int(stack.outputs()["nodePort"].value)
        usage = node_usage.measure([kwok / "node" / name, kwok / "docker" / name], REST_SECONDS)
        with Traffic(port) as steady:
            time.sleep(BASELINE_SECONDS)
        with Traffic(port) as rolling:
            # Traced, so the table shows how much of it is the rollout itself (the update call's await).
            rollout, breakdown = rollout_breakdown(project, stack, APP_VERSION, traces)
        ready = statistics.median(start_to_ready(cluster, "k8s-demo-dev", f"k8s-demo:{APP_VERSION}"))
        failed = failure_rows(project, cluster, stack, before)
        canary_lines = canary_bench(project)
    batches = -(-REPLICAS // (MAX_SURGE + MAX_UNAVAILABLE))
    floor = batches * (ready + MIN_READY_SECONDS)
    return [
        f"real node ({REPLICAS} nginx pods, same rollout settings)",
        f"| {'measure':<40} | {'seconds':>7} | {'ratio':<20} |",
        f"|{'-' * 42}|{'-' * 9}|{'-' * 22}|",
        f"| {'pod start-to-ready (median of 10)':<40} | {ready:>7.1f} | {'':<20} |",
        f"| {f'floor {batches} x ({ready:.0f} s + {MIN_READY_SECONDS} s minReady)':<40} | {floor:>7.1f} | {'':<20} |",
        f"| {ROLLOUT_LABEL:<40} | {rollout:>7.1f} | {f'{rollout / floor:.2f} x floor':<20} |",
        "",
        f"traffic to 127.0.0.1:<nodePort>, {rolling.rate:.0f} requests/s, <= {rolling.concurrency} in flight",
        f"| {'phase':<32} | {'requests':>8} | {'failed':>6} | {'p50 ms':>6} | {'p99 ms':>6} |",
        f"|{'-' * 34}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 8}|",
        traffic_row(f"steady, {BASELINE_SECONDS:.0f} s", steady.snapshot()),
        traffic_row("during the rollout", rolling.snapshot()),
        "",
        *breakdown,
        "",
        f"node components at rest with the {REPLICAS} pods running ({usage.processes} processes, "
        f"{REST_SECONDS:.0f} s): {usage.rss_mib:.0f} MiB resident, {usage.cpu_percent:.1f} % of one core",
        f"  {usage.breakdown()}",
        "",
        *failed,
        "",
        *canary_lines,
    ]


#: The two stacks of the canary comparison: 4 stable pods each; the canary adds 1 (20% of connections).
CANARY_STACKS = ("bench-rolling", "bench-canary")
CANARY_REPLICAS = 4
CANARY_WINDOW = 30
#: Seconds of traffic after make up returned, in the blast radius measure.
CANARY_AFTER = 20.0


def _make_up(project: Project, stack: str) -> subprocess.CompletedProcess[str]:
    return make(project, "up", f"STACK={stack}", "ARGS=--yes")


def _broken_page(project: Project, version: str) -> None:
    """A build that goes ready (``/healthz`` answers) but answers 404 on ``/``: nginx's root is not there."""
    project.write_app(version, "Hello Broken!")
    conf = project.dir / "app" / "nginx.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace("/usr/share/nginx/html;", "/nonexistent;"), "utf-8")


def blast_row(label: str, requests: list[Request], returned: float) -> str:
    """Requests failed in all, the span from the first failure to the last, and the failed share after the return."""
    failed = failures(requests)
    after = [r for r in requests if r.started > returned]
    span = failed[-1].ended - failed[0].started if failed else 0.0
    share_after = 100 * len(failures(after)) / len(after) if after else 0.0
    return (
        f"| {label:<24} | {len(requests):>8} | {len(failed):>6} | {100 * len(failed) / max(1, len(requests)):>6.1f} "
        f"| {span:>9.1f} | {share_after:>13.1f} |"
    )


def canary_bench(project: Project) -> list[str]:
    """Step 9 on the real node: the lines of its tables."""
    ports = {}
    for name in CANARY_STACKS:
        stack = project.stack(name)
        strategy = "canary" if name.endswith("canary") else "rolling"
        for key, value in {
            "replicas": str(CANARY_REPLICAS),
            "rolloutStrategy": strategy,
            "canaryAnalysisSeconds": str(CANARY_WINDOW),
            "canaryMinRequests": "20",
        }.items():
            stack.set_config(key, auto.ConfigValue(value))
    project.write_app("0.1", "Hello Docker!")
    for name in CANARY_STACKS:
        if _make_up(project, name).returncode != 0:
            raise RuntimeError(f"the first release of {name} failed")
        ports[name] = int(project.stack(name).outputs()["nodePort"].value)
    project.restore_app()
    project.write_app("0.2", "Hello Kubernetes!")
    good = {}
    for name in CANARY_STACKS:
        start = time.monotonic()
        done = _make_up(project, name)
        good[name] = time.monotonic() - start
        if done.returncode != 0:
            raise RuntimeError(f"the good release of {name} failed:\n{done.stdout}\n{done.stderr}")
    _broken_page(project, "0.3")
    blast = []
    for name in CANARY_STACKS:
        with Traffic(ports[name]) as traffic:
            _make_up(project, name)
            returned = time.monotonic()
            time.sleep(CANARY_AFTER)
        blast.append(blast_row(name.removeprefix("bench-"), traffic.snapshot(), returned))
    project.restore_app()
    rolling, canary = good[CANARY_STACKS[0]], good[CANARY_STACKS[1]]
    return [
        f"canary against rolling ({CANARY_REPLICAS} pods; the canary 1 more, {CANARY_WINDOW} s window), make up",
        f"| {'measure':<40} | {'seconds':>7} | {'ratio':<20} |",
        f"|{'-' * 42}|{'-' * 9}|{'-' * 22}|",
        f"| {'good release 0.1 -> 0.2, rolling':<40} | {rolling:>7.1f} | {'1.00 x rolling':<20} |",
        f"| {'good release 0.1 -> 0.2, canary':<40} | {canary:>7.1f} | {f'{canary / rolling:.2f} x rolling':<20} |",
        "",
        f"a build that goes ready but answers 404 on /: traffic during make up and {CANARY_AFTER:.0f} s after",
        f"| {'strategy':<24} | {'requests':>8} | {'failed':>6} | {'% fail':>6} | {'span (s)':>9} "
        f"| {'% fail after':>13} |",
        f"|{'-' * 26}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 11}|{'-' * 15}|",
        *blast,
        "rolling: every request fails from the end of its rollout on, with no end; canary: its share, until aborted.",
    ]


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
            pulumi_rollout = timed(lambda: engine_up(stack))
            noop_up = timed(lambda: engine_up(stack))
            noop_preview = timed(stack.preview)
            with refresh_option_removed(project):
                noop_up_stale = timed(lambda: engine_up(stack))
                noop_preview_stale = timed(stack.preview)
            # Where the time goes, and each lever on it, on the same stack.
            levers = bench_levers(project, stack)
            rolled_back = auto_rollback(project, stack)

            # The tutorial's way, same cluster, same objects, own namespace.
            kubectl_release(cluster, "0.1", workdir)
            kubectl_rollout = timed(lambda: kubectl_release(cluster, "0.2", workdir))

    floor_label = f"rollout floor ceil({REPLICAS}/{MAX_SURGE + MAX_UNAVAILABLE}) x {MIN_READY_SECONDS} s"
    rows = [
        ("make up's update, rollout 0.1 -> 0.2", pulumi_rollout, f"{pulumi_rollout / kubectl_rollout:.2f} x kubectl"),
        ("kubectl apply + rollout status, same", kubectl_rollout, "1.00 x kubectl"),
        (floor_label, float(ROLLOUT_FLOOR), ""),
        ("make up's update rollout / floor", pulumi_rollout, f"{pulumi_rollout / ROLLOUT_FLOOR:.2f} x floor"),
        ("kubectl rollout / floor", kubectl_rollout, f"{kubectl_rollout / ROLLOUT_FLOOR:.2f} x floor"),
        ("make up's update, no change", noop_up, f"{noop_up / pulumi_rollout:.2f} x rollout up"),
        ("pulumi preview, no change", noop_preview, f"{noop_preview / pulumi_rollout:.2f} x rollout up"),
        ("make up's update, no change, no refresh", noop_up_stale, f"refresh costs {noop_up / noop_up_stale:.2f} x"),
        (
            "pulumi preview, no change, no refresh",
            noop_preview_stale,
            f"refresh costs {noop_preview / noop_preview_stale:.2f} x",
        ),
    ]
    deadline = failing_rollout_deadline()
    rollback_floor = deadline + ROLLOUT_FLOOR
    rollback_label = f"floor: progress deadline {deadline} s + rollout"
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
    print()
    print("\n".join(levers))
    with tempfile.TemporaryDirectory(prefix="k8s-demo-bench-node-") as tmp:
        print()
        print("\n".join(real_node_bench(Path(tmp), rolled_back)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

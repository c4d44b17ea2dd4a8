"""``make bench``: where one update's time goes, and each lever on Pulumi's fixed cost, side by side in one run.

1. **Breakdown.** One no-op ``make up`` update and one rollout, each through
   ``ops.engine.up`` (what ``make up`` runs) with Pulumi's own OpenTelemetry trace
   (``--otel-traces``), cut into phases by ``tests/e2e/trace_breakdown.py``. For
   the rollout, a ``kubectl get --watch`` of the Deployment notes when Kubernetes
   reports it complete (the ``pulumi.com/waitFor`` conditions all hold), so the
   table shows how long the provider's await and then ``up`` take after that.
2. **Levers.** Each one A/B: the two variants alternate (A B A B …) on the same
   stack, ``REPEATS`` times each, so both see the same machine; medians and the
   ratio B / A. A lever that changes the program is applied to the bench's project
   copy only, so "A" is the program as it was and "B" as it is (or would be).
"""

from __future__ import annotations

import ensurepip
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from pulumi import automation as auto

from components.webapp import DEPLOYMENT_NAME
from ops import engine
from ops.update_flags import UpdateFlags
from tests.e2e.sandbox import REPLICAS, Cluster, Project
from tests.e2e.trace_breakdown import breakdown, read_trace, table

#: Runs of each variant of a lever.
REPEATS = 5
#: Rollouts of each variant for the rollout levers (each about 17 s on kwok).
ROLLOUT_REPEATS = 3
NAMESPACE = "k8s-demo-dev"
MESSAGE = "bench"


@contextmanager
def traced(project: Project, directory: Path) -> Iterator[list[Path]]:
    """Each CLI run of the project's stacks writes its own OpenTelemetry trace; yields their paths, in order."""
    paths: list[Path] = []
    workspace = project.workspace

    def trace_args(stack_name: str) -> list[str]:
        path = directory / f"trace-{len(paths)}.otlp.json"
        paths.append(path)
        return ["--otel-traces", f"file://{path}"]

    workspace.serialize_args_for_op = trace_args  # type: ignore[method-assign]  # the Workspace's per-run args hook
    try:
        yield paths
    finally:
        del workspace.serialize_args_for_op


@contextmanager
def environment(project: Project, extra: dict[str, str]) -> Iterator[None]:
    """The project's CLI runs with ``extra`` added to their environment."""
    before = project.workspace.env_vars
    project.workspace.env_vars = {**before, **extra}
    try:
        yield
    finally:
        project.workspace.env_vars = before


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """``path`` with ``old`` (which must be there) replaced by ``new``, then put back."""
    original = path.read_text(encoding="utf-8")
    if old not in original:
        raise RuntimeError(f"{path} no longer holds {old!r}: the bench's variant needs updating")
    path.write_text(original.replace(old, new, 1), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock (epoch) start and end of ``action``."""
    start = time.time()
    action()
    return start, time.time()


def engine_up(stack: auto.Stack, flags: UpdateFlags | None = None) -> None:
    report = engine.up(stack, message=MESSAGE, flags=flags)
    if report.failed:
        raise RuntimeError(f"the bench's update failed: {report.stderr or report.errors}")


@dataclass
class CompletionWatch:
    """Notes, from a ``kubectl get --watch`` of the Deployment, when its rollout of ``generation`` is complete.

    Complete is what the program's ``pulumi.com/waitFor`` asks: the status caught up with
    the generation, ``Progressing`` says ``NewReplicaSetAvailable``, and every count equals the replicas.
    """

    cluster: Cluster
    complete_at: float | None = None
    lines: list[str] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None
    _after: float = 0.0

    TEMPLATE = (
        "jsonpath={.metadata.generation} {.status.observedGeneration} "
        '{.status.conditions[?(@.type=="Progressing")].reason} {.status.replicas} {.status.updatedReplicas} '
        '{.status.readyReplicas} {.status.availableReplicas}{"\\n"}'
    )

    def start(self, after: float) -> None:
        """Watch from now on; a complete status counts only once a newer generation than ``after``'s showed up."""
        self._after = after
        argv = [str(self.cluster.kubectl_bin), "--kubeconfig", str(self.cluster.kubeconfig), "get", "deployment"]
        argv += [DEPLOYMENT_NAME, "-n", NAMESPACE, "--watch", "-o", self.TEMPLATE]
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        generation_seen = None
        for line in self._process.stdout:
            now = time.time()
            self.lines.append(line)
            fields = line.split()
            if len(fields) != 7:
                continue
            generation, observed, reason, *counts = fields
            if generation_seen is None:
                generation_seen = generation
                continue
            done = generation == observed and generation != generation_seen and reason == "NewReplicaSetAvailable"
            if done and all(count == str(REPLICAS) for count in counts) and self.complete_at is None:
                self.complete_at = now

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)


def rollout_breakdown(project: Project, stack: auto.Stack, tag: str, directory: Path) -> tuple[float, list[str]]:
    """One traced rollout to ``tag`` through ``engine.up``: its wall time, and its breakdown as table lines.

    The table ends with what follows Kubernetes' verdict: the provider's await returning, then ``up``.
    """
    stack.set_config("imageTag", auto.ConfigValue(tag))
    watch = CompletionWatch(project.cluster)
    watch.start(after=time.time())
    time.sleep(1.0)  # the watch's first line (the current generation) before the update changes it
    with traced(project, directory) as traces:
        called, returned = timed(lambda: engine_up(stack))
    time.sleep(0.5)
    watch.stop()
    result = breakdown(read_trace(traces[0]), called, returned)
    lines = table(f"one rollout to {tag} (make up's engine.up, traced)", result, returned - called)
    if watch.complete_at is None:
        return returned - called, [
            *lines,
            "| Kubernetes' rollout-complete status was not seen by the watch |         |",
        ]
    update_end = _update_end(traces[0])
    lines += [
        f"| {'Kubernetes reports the rollout complete, after the call':<62} | {watch.complete_at - called:>7.2f} |",
        f"| {'  then: the provider await returns (Update call ends)':<62} | {update_end - watch.complete_at:>7.2f} |",
        f"| {'  then: up returns':<62} | {returned - watch.complete_at:>7.2f} |",
    ]
    return returned - called, lines


def _update_end(trace: Path) -> float:
    ends = [
        s.end for s in read_trace(trace) if s.name == "pulumirpc.ResourceProvider/Update" and s.service == "pulumi-cli"
    ]
    return max(ends) if ends else float("nan")


def noop_breakdown(project: Project, stack: auto.Stack, directory: Path) -> list[str]:
    """One traced no-op update through ``engine.up``: its breakdown."""
    with traced(project, directory) as traces:
        called, returned = timed(lambda: engine_up(stack))
    result = breakdown(read_trace(traces[0]), called, returned)
    return table("one no-op update (make up's engine.up, traced)", result, returned - called)


# ---------------------------------------------------------------------------
# Levers


def _nothing() -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True)
class Lever:
    """One lever's two variants: ``a`` (before, or without) and ``b`` (after, or with).

    Each variant runs ``run_a``/``run_b`` inside ``context_a``/``context_b``; only the run is timed.
    """

    name: str
    a: str
    b: str
    run_a: Callable[[], object]
    run_b: Callable[[], object]
    context_a: Callable[[], AbstractContextManager[object]] = _nothing
    context_b: Callable[[], AbstractContextManager[object]] = _nothing


def ab(lever: Lever, repeats: int) -> tuple[float, float]:
    """Medians of variant A and of variant B, alternating A, B, A, B…"""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        for context, run, samples in ((lever.context_a, lever.run_a, a), (lever.context_b, lever.run_b, b)):
            with context():
                start = time.monotonic()
                run()
                samples.append(time.monotonic() - start)
    return statistics.median(a), statistics.median(b)


def bundled_pip(directory: Path) -> Path:
    """The pip that ``python -m venv`` puts in a new venv (ensurepip's wheel), unpacked into ``directory``."""
    wheels = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not wheels:
        raise RuntimeError("ensurepip bundles no pip wheel here")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(directory)
    # Compiled once, as pip's install does, so neither side pays for bytecode.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(directory)], check=True)
    return directory


def removed_bytecode(project: Project) -> AbstractContextManager[object]:
    """No bytecode cache for the project's own modules, none written: every run compiles them."""

    @contextmanager
    def variant() -> Iterator[None]:
        for cache in project.dir.rglob("__pycache__"):
            shutil.rmtree(cache)
        with environment(project, {"PYTHONDONTWRITEBYTECODE": "1"}):
            yield

    return variant()


def import_seconds(modules: str, repeats: int) -> tuple[float, float]:
    """Median seconds of a fresh ``python -c 'import <modules>'`` and of ``python -c pass``, alternated."""
    with_imports: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        for code, samples in ((f"import {modules}", with_imports), ("pass", bare)):
            start = time.monotonic()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
            samples.append(time.monotonic() - start)
    return statistics.median(with_imports), statistics.median(bare)


PROGRAM_MODULES = "pulumi, pulumi_kubernetes.core.v1, components.settings, components.webapp"
BUILD_MODULES = "pulumi_docker, components.docker_engine"


def lever_rows(project: Project, stack: auto.Stack, workdir: Path) -> list[str]:
    """Each lever, A/B, as Markdown table lines."""

    def noop() -> None:
        engine_up(stack)

    main = project.dir / "__main__.py"
    old_pip = bundled_pip(workdir / "bundled-pip")
    levers = [
        Lever(
            "Automation API reads after the update",
            "Stack.up (+2 x stack output, history)",
            "engine.up: the update only",
            lambda: stack.up(message=MESSAGE),
            noop,
        ),
        Lever(
            "interpreter exit: gc.freeze() after imports",
            "without",
            "with (__main__.py)",
            noop,
            noop,
            context_a=lambda: edited(main, "\ngc.freeze()\n", "\n"),
        ),
        Lever(
            "the venv's pip, run by the language host",
            "23.2.1 (python -m venv's)",
            f"{version('pip')} (requirements.txt)",
            noop,
            noop,
            context_a=lambda: environment(project, {"PYTHONPATH": str(old_pip)}),
        ),
        Lever(
            "checkpoints, no-op",
            "written",
            "PULUMI_SKIP_CHECKPOINTS=true",
            noop,
            noop,
            context_b=lambda: environment(project, {"PULUMI_SKIP_CHECKPOINTS": "true"}),
        ),
        Lever(
            "file backend: a .bak copy before each state save",
            "made",
            "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS",
            noop,
            noop,
            context_b=lambda: environment(project, {"PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true"}),
        ),
        Lever(
            "refresh parallelism",
            "Pulumi's default (unbounded)",
            "--parallel 1",
            noop,
            lambda: engine_up(stack, UpdateFlags(yes=True, parallel=1)),
        ),
        Lever(
            "bytecode of the project's own modules",
            "cached (__pycache__)",
            "none, PYTHONDONTWRITEBYTECODE=1",
            noop,
            noop,
            context_b=lambda: removed_bytecode(project),
        ),
        Lever(
            "CLI update check",
            "PULUMI_SKIP_UPDATE_CHECK unset",
            "PULUMI_SKIP_UPDATE_CHECK=true",
            noop,
            noop,
            context_a=lambda: _without(project, "PULUMI_SKIP_UPDATE_CHECK"),
        ),
    ]
    rows = [(lever.name, lever.a, *ab(lever, REPEATS), lever.b) for lever in levers]
    rows.append(_checkpoint_rollouts(project, stack))
    program, bare = import_seconds(PROGRAM_MODULES, REPEATS)
    everything, _ = import_seconds(f"{PROGRAM_MODULES}, {BUILD_MODULES}", REPEATS)
    lines = [
        f"levers, A/B alternated, median of {REPEATS} each (rollouts: {ROLLOUT_REPEATS}); no-op update via engine.up",
        f"| {'lever':<48} | {'A':<37} | {'s':>5} | {'B':<45} | {'s':>5} | {'B/A':>5} |",
        f"|{'-' * 50}|{'-' * 39}|{'-' * 7}|{'-' * 47}|{'-' * 7}|{'-' * 7}|",
    ]
    lines += [
        f"| {name:<48} | {a_label:<37} | {a:>5.2f} | {b_label:<45} | {b:>5.2f} | {b / a:>5.2f} |"
        for name, a_label, a, b, b_label in rows
    ]
    lines += [
        "",
        f"imports, fresh interpreter, median of {REPEATS}: python -c pass {bare:.3f} s; the program's modules "
        f"{program:.3f} s; with the build's (Docker SDK, engine client) too {everything:.3f} s: "
        f"importing those only for a build would save {everything - program:.3f} s",
    ]
    return lines


@contextmanager
def _without(project: Project, name: str) -> Iterator[None]:
    """The project's CLI runs without ``name`` in their environment."""
    before = project.workspace.env_vars
    project.workspace.env_vars = {key: value for key, value in before.items() if key != name}
    try:
        yield
    finally:
        project.workspace.env_vars = before


def _checkpoint_rollouts(project: Project, stack: auto.Stack) -> tuple[str, str, float, float, str]:
    """Rollouts back and forth between 0.1 and 0.2, alternately with and without checkpoints."""
    written: list[float] = []
    skipped: list[float] = []
    tag = stack.get_config("imageTag").value
    for _ in range(ROLLOUT_REPEATS):
        for extra, samples in (({}, written), ({"PULUMI_SKIP_CHECKPOINTS": "true"}, skipped)):
            tag = "0.1" if tag == "0.2" else "0.2"
            stack.set_config("imageTag", auto.ConfigValue(tag))
            with environment(project, extra):
                start = time.monotonic()
                engine_up(stack)
                samples.append(time.monotonic() - start)
    return (
        "checkpoints, rollout 0.1 <-> 0.2",
        "written",
        statistics.median(written),
        statistics.median(skipped),
        "PULUMI_SKIP_CHECKPOINTS=true",
    )


def bench_levers(project: Project, stack: auto.Stack) -> list[str]:
    """The breakdowns and the levers, on a stack that runs 0.2 or 0.1: the lines to print."""
    with tempfile.TemporaryDirectory(prefix="k8s-demo-bench-traces-") as tmp:
        directory = Path(tmp)
        running = stack.get_config("imageTag").value
        lines = noop_breakdown(project, stack, directory)
        lines.append("")
        lines += rollout_breakdown(project, stack, "0.1" if running == "0.2" else "0.2", directory)[1]
        lines.append("")
        lines += lever_rows(project, stack, directory)
    return lines

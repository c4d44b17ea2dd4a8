"""Every row of the tutorial for real: the Pulumi engine and provider against the sandbox cluster.

The steps build on each other in file order (deploy 0.1, release 0.2, history,
rollback, failed rollout, interrupted updates, review stack), as the
tutorial's do; each step is a module fixture and each test checks one
behaviour of it. They follow the README's walkthrough in a copy of the
project: the CLI runs ``__main__.py`` through the Python language host, and
the app's own version is built by the Docker provider in the sandbox's engine
(0.1 after ``echo 0.1 > app/VERSION``, then 0.2 as committed); any other tag
is deployed by tag and builds nothing.
"""

from __future__ import annotations

import queue
import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pulumi import automation as auto

from tests.e2e.sandbox import (
    APP_VERSION,
    BROKEN_SUFFIX,
    MAX_SURGE,
    MAX_UNAVAILABLE,
    MIN_READY_SECONDS,
    REPLICAS,
    ROLLOUT_FLOOR,
    Cluster,
    Project,
    RolloutWatcher,
    pod_ready,
    recording_pulumi,
    wait_for,
)

pytestmark = pytest.mark.e2e
#: The failed rollouts deploy a `-broken` tag, which only the sandbox's kwok knows what to do with (never
#: ready); on another cluster its pods would try to pull an image that exists nowhere.
KWOK_BROKEN_STAGE = pytest.mark.sandbox("kwok's `-broken` stage (pods of such a tag run but never become ready)")

NS = "k8s-demo-dev"
DEPLOYMENT = "k8s-demo-deployment"
SERVICE = "k8s-demo-svc"
#: For the failed rollout: a short pod-ready budget, so the progress deadline is 2 * (2 + 3) = 10 s
#: and pulumi's await timeout 5 batches * 5 s + 10 s = 35 s. (kwok marks a pod ready within a second.)
SHORT_POD_READY = 2
FAILED_ROLLOUT_TIMEOUT = 5 * (SHORT_POD_READY + MIN_READY_SECONDS) + 2 * (SHORT_POD_READY + MIN_READY_SECONDS)


def image(tag: str) -> str:
    return f"k8s-demo:{tag}"


def set_tag(stack: auto.Stack, tag: str) -> None:
    stack.set_config("imageTag", auto.ConfigValue(tag))


def deployment_status(cluster: Cluster, namespace: str = NS) -> dict[str, Any]:
    return cluster.get("deployment", namespace, DEPLOYMENT)


def live_pods(cluster: Cluster, namespace: str = NS) -> list[dict[str, Any]]:
    pods = cluster.get("pods", namespace)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pod_images(cluster: Cluster, namespace: str = NS) -> list[str]:
    return sorted(c["image"] for p in live_pods(cluster, namespace) for c in p["spec"]["containers"])


def replica_sets(cluster: Cluster) -> dict[str, dict[str, str]]:
    """ReplicaSets of the Deployment: name -> {image, revision, cause}."""
    found = {}
    for rs in cluster.get("replicasets", NS)["items"]:
        annotations = rs["metadata"].get("annotations", {})
        found[rs["metadata"]["name"]] = {
            "image": rs["spec"]["template"]["spec"]["containers"][0]["image"],
            "revision": annotations.get("deployment.kubernetes.io/revision", ""),
            "cause": annotations.get("kubernetes.io/change-cause", ""),
        }
    return found


def rollout_complete(cluster: Cluster, replicas: int = REPLICAS, namespace: str = NS) -> bool:
    """`kubectl rollout status`'s "successfully rolled out", and no live pod of another template."""
    d = deployment_status(cluster, namespace)
    status = d.get("status", {})
    template_image = d["spec"]["template"]["spec"]["containers"][0]["image"]
    return bool(
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("readyReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
        and pod_images(cluster, namespace) == [template_image] * replicas
    )


def checkpoint(stack: auto.Stack) -> dict[str, Any]:
    """The stack's state as `pulumi stack export` shows it."""
    return dict(stack.export_stack().deployment or {})


@dataclass
class Step:
    """What one `pulumi up` did: its result or error, its wall time, what the watcher saw,
    and whether the rollout was complete when `up` returned."""

    up: auto.UpResult | None
    elapsed: float
    watcher: RolloutWatcher
    complete_on_return: bool
    images_on_return: list[str]
    ready_images_on_return: list[str]
    error: str = ""


def watched_up(stack: auto.Stack, cluster: Cluster, *, expect_failure: bool = False) -> Step:
    with RolloutWatcher(cluster, NS, DEPLOYMENT) as watcher:
        start = time.monotonic()
        try:
            result: auto.UpResult | None = stack.up()
            error = ""
        except auto.CommandError as failure:
            if not expect_failure:
                raise
            result, error = None, str(failure)
        elapsed = time.monotonic() - start
        # Read before anything else can happen: this is what `up` returning promises.
        complete, images = rollout_complete(cluster), pod_images(cluster)
        ready = sorted(c["image"] for p in live_pods(cluster) if pod_ready(p) for c in p["spec"]["containers"])
    return Step(result, elapsed, watcher, complete, images, ready, error)


# a. First deploy: preview, then up of the dev stack at 0.1.


@dataclass
class FirstDeploy:
    stack: auto.Stack
    preview: auto.PreviewResult
    up: auto.UpResult
    images: set[str]


@pytest.fixture(scope="module")
def first_deploy(e2e_project: Project, e2e_cluster: Cluster) -> FirstDeploy:
    # Walkthrough step 1: recreate the tutorial's first version, then deploy it.
    e2e_project.write_app("0.1", "Hello Docker!")
    stack = e2e_project.stack("dev")
    preview = stack.preview()
    up = stack.up()
    return FirstDeploy(stack, preview, up, e2e_cluster.images())


def test_first_deploy_builds_0_1_in_the_sandbox_engine(first_deploy: FirstDeploy) -> None:
    assert first_deploy.up.outputs["imageBuilt"].value is True
    assert image("0.1") in first_deploy.images


def test_first_deploy_records_the_build_in_the_state(first_deploy: FirstDeploy) -> None:
    images = [r for r in checkpoint(first_deploy.stack).get("resources", []) if r["type"] == "docker:index/image:Image"]
    assert [r["outputs"]["imageName"] for r in images] == [image("0.1")]


def test_preview_plans_every_object_and_changes_nothing(first_deploy: FirstDeploy) -> None:
    # Stack, 2 components, the image, namespace, deployment, service, network policy (providers are not counted).
    assert first_deploy.preview.change_summary == {"create": 8}


def test_up_makes_all_ten_replicas_available(first_deploy: FirstDeploy, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster)
    assert pod_images(e2e_cluster) == [image("0.1")] * REPLICAS


def test_service_endpoints_are_exactly_the_deployment_pods(first_deploy: FirstDeploy, e2e_cluster: Cluster) -> None:
    slices = e2e_cluster.get("endpointslices", NS, "-l", f"kubernetes.io/service-name={SERVICE}")["items"]
    endpoints = {
        e["targetRef"]["name"] for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready")
    }
    assert endpoints == {p["metadata"]["name"] for p in live_pods(e2e_cluster)}
    assert len(endpoints) == REPLICAS


def test_service_is_node_port(first_deploy: FirstDeploy, e2e_cluster: Cluster) -> None:
    service = e2e_cluster.get("service", NS, SERVICE)
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert service["spec"]["type"] == "NodePort"
    assert 30000 <= node_port <= 32767
    assert first_deploy.up.outputs["nodePort"].value == node_port


def test_stack_outputs(first_deploy: FirstDeploy) -> None:
    outputs = {key: value.value for key, value in first_deploy.up.outputs.items()}
    node_port = outputs["nodePort"]
    assert outputs == {
        "namespace": NS,
        "deploymentName": DEPLOYMENT,
        "serviceName": SERVICE,
        "image": image("0.1"),
        "imageBuilt": True,
        "nodePort": node_port,
        "url": f"http://127.0.0.1:{node_port}/",
    }


# b. Release 0.2: a rolling update within its bounds, and `pulumi up` returns when it is done.


@pytest.fixture(scope="module")
def release(first_deploy: FirstDeploy, e2e_project: Project, e2e_cluster: Cluster) -> Step:
    # Walkthrough step 3: `git checkout app/` puts 0.2 back, and `up` builds and rolls it out.
    e2e_project.restore_app()
    return watched_up(first_deploy.stack, e2e_cluster)


def test_release_builds_the_app_version(release: Step, e2e_cluster: Cluster) -> None:
    assert APP_VERSION == "0.2"
    assert release.up is not None
    assert release.up.outputs["imageBuilt"].value is True
    assert image("0.2") in e2e_cluster.images()


def test_release_was_observed_mid_rollout(release: Step) -> None:
    # Guards the bound checks below: the watcher really saw both versions side by side.
    assert any(s.images == {image("0.1"), image("0.2")} for s in release.watcher.samples)
    assert release.watcher.errors == []


def test_release_keeps_availability_above_replicas_minus_max_unavailable(release: Step) -> None:
    assert release.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE


def test_release_never_exceeds_replicas_plus_max_surge(release: Step) -> None:
    assert release.watcher.max_pods <= REPLICAS + MAX_SURGE


def test_release_honours_min_ready_seconds(release: Step) -> None:
    assert release.elapsed >= ROLLOUT_FLOOR


def test_up_returns_only_when_the_rollout_is_complete(release: Step) -> None:
    # Read straight after `pulumi up` returned: nothing left to roll.
    assert release.complete_on_return
    assert release.images_on_return == [image("0.2")] * REPLICAS


# c. History.


def test_stack_history_lists_each_update(release: Step, first_deploy: FirstDeploy) -> None:
    updates = [h for h in first_deploy.stack.history() if h.kind == "update"]
    assert len(updates) >= 2
    assert all(h.result == "succeeded" for h in updates)


def test_rollout_history_records_each_tag_as_change_cause(release: Step, e2e_cluster: Cluster) -> None:
    history = e2e_cluster.kubectl("rollout", "history", f"deployment/{DEPLOYMENT}", "-n", NS)
    assert re.search(r"^1\s+pulumi up: image k8s-demo:0\.1, stack dev$", history, re.M)
    assert re.search(r"^2\s+pulumi up: image k8s-demo:0\.2, stack dev$", history, re.M)


# d. Rollback by tag.


@dataclass
class Rollback:
    before: dict[str, dict[str, str]]
    after: dict[str, dict[str, str]]
    step: Step
    resource_types: set[str]
    images_before: set[str]
    images_after: set[str]


@pytest.fixture(scope="module")
def rollback(release: Step, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Rollback:
    before, images_before = replica_sets(e2e_cluster), e2e_cluster.images()
    set_tag(first_deploy.stack, "0.1")
    step = watched_up(first_deploy.stack, e2e_cluster)
    types = {r["type"] for r in checkpoint(first_deploy.stack).get("resources", [])}
    return Rollback(before, replica_sets(e2e_cluster), step, types, images_before, e2e_cluster.images())


def test_rollback_returns_only_when_0_1_runs_everywhere(rollback: Rollback) -> None:
    # The defect: `up` returned while the reused 0.1 ReplicaSet had 2 of 10 pods.
    assert rollback.step.complete_on_return
    assert rollback.step.images_on_return == [image("0.1")] * REPLICAS


def test_rollback_reuses_the_old_replica_set(rollback: Rollback) -> None:
    old = [name for name, rs in rollback.before.items() if rs["image"] == image("0.1")]
    assert len(old) == 1
    assert set(rollback.after) == set(rollback.before)
    assert rollback.after[old[0]]["revision"] == "3"


def test_rollback_builds_nothing(rollback: Rollback) -> None:
    assert rollback.step.up is not None
    assert rollback.step.up.outputs["imageBuilt"].value is False
    assert not {t for t in rollback.resource_types if t.startswith("docker:")}
    assert rollback.images_after == rollback.images_before


# Every return to a template whose ReplicaSet exists waits for the whole rollout.
# With the release and the rollback above, the tag goes 0.1 -> 0.2 -> 0.1 -> 0.2 -> 0.1.


@pytest.fixture(scope="module")
def flips(rollback: Rollback, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> list[Step]:
    stack = first_deploy.stack
    # "To release the current code again: pulumi config rm imageTag && pulumi up" (the build is cached).
    stack.remove_config("imageTag")
    again = watched_up(stack, e2e_cluster)
    set_tag(stack, "0.1")
    return [rollback.step, again, watched_up(stack, e2e_cluster)]


def test_every_flip_returns_only_when_the_rollout_is_complete(flips: list[Step]) -> None:
    assert [step.complete_on_return for step in flips] == [True, True, True]


def test_every_flip_runs_only_its_tag_on_return(flips: list[Step]) -> None:
    assert [step.images_on_return for step in flips] == [[image(tag)] * REPLICAS for tag in ("0.1", "0.2", "0.1")]


def test_every_flip_was_observed_mid_rollout(flips: list[Step]) -> None:
    # Guards the bound checks below: each flip really rolled (both tags side by side).
    assert all(any(s.images == {image("0.1"), image("0.2")} for s in step.watcher.samples) for step in flips)
    assert [step.watcher.errors for step in flips] == [[], [], []]


def test_every_flip_keeps_availability_above_replicas_minus_max_unavailable(flips: list[Step]) -> None:
    assert min(step.watcher.min_available for step in flips) >= REPLICAS - MAX_UNAVAILABLE


def test_every_flip_stays_within_replicas_plus_max_surge(flips: list[Step]) -> None:
    assert max(step.watcher.max_pods for step in flips) <= REPLICAS + MAX_SURGE


def test_every_flip_honours_min_ready_seconds(flips: list[Step]) -> None:
    # A return to an existing ReplicaSet still rolls batch by batch.
    assert min(step.elapsed for step in flips) >= ROLLOUT_FLOOR


# A break-glass kubectl change is visible to preview, and `up` restores config.


def deployment_image(cluster: Cluster) -> str:
    return str(deployment_status(cluster)["spec"]["template"]["spec"]["containers"][0]["image"])


@dataclass
class Drift:
    """A kubectl change behind Pulumi's back, the preview after it, and the `up` that repairs it."""

    image_after_kubectl: str
    replicas_after_kubectl: int
    preview: auto.PreviewResult
    repair: Step


def drift_and_repair(stack: auto.Stack, cluster: Cluster, *kubectl: str) -> Drift:
    cluster.kubectl(*kubectl, f"deployment/{DEPLOYMENT}", "-n", NS)
    cluster.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NS, "--timeout=120s")
    drifted = deployment_status(cluster)
    preview = stack.preview(diff=True)
    return Drift(deployment_image(cluster), drifted["spec"]["replicas"], preview, watched_up(stack, cluster))


@pytest.fixture(scope="module")
def undo(flips: list[Step], first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Drift:
    # Config says 0.1; `rollout undo` puts the previous revision, 0.2, back.
    return drift_and_repair(first_deploy.stack, e2e_cluster, "rollout", "undo")


@pytest.fixture(scope="module")
def scaled(undo: Drift, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Drift:
    return drift_and_repair(first_deploy.stack, e2e_cluster, "scale", "--replicas=3")


def test_kubectl_undo_really_changed_the_cluster(undo: Drift) -> None:
    # Guards the tests below: the cluster ran 0.2 while config said 0.1.
    assert undo.image_after_kubectl == image("0.2")


def test_preview_after_kubectl_undo_plans_to_update_the_deployment(undo: Drift) -> None:
    assert undo.preview.change_summary.get(auto.OpType.UPDATE) == 1
    assert re.search(rf"~ kubernetes:apps/v1:Deployment: \\(update\\)|{re.escape(DEPLOYMENT)}", undo.preview.stdout)


def planned_update(preview: auto.PreviewResult) -> str:
    """The Deployment's planned update in `pulumi preview --diff` output (after the refresh's own section)."""
    return preview.stdout.partition("~ kubernetes:apps/v1:Deployment: (update)")[2].partition("Resources:")[0]


def test_preview_after_kubectl_undo_shows_the_running_and_the_configured_image(undo: Drift) -> None:
    # What runs now => what config asks for.
    assert re.search(r'~ image: "k8s-demo:0\.2" => "k8s-demo:0\.1"', planned_update(undo.preview)), undo.preview.stdout


def test_up_after_kubectl_undo_returns_only_when_config_runs_everywhere(undo: Drift) -> None:
    assert undo.repair.complete_on_return
    assert undo.repair.images_on_return == [image("0.1")] * REPLICAS


def test_drift_repair_keeps_availability_above_replicas_minus_max_unavailable(undo: Drift) -> None:
    assert undo.repair.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE
    assert undo.repair.watcher.max_pods <= REPLICAS + MAX_SURGE


def test_kubectl_scale_really_changed_the_cluster(scaled: Drift) -> None:
    assert scaled.replicas_after_kubectl == 3


def test_preview_after_kubectl_scale_shows_the_replica_difference(scaled: Drift) -> None:
    assert re.search(r"~ replicas\s*: 3 => 10", planned_update(scaled.preview)), scaled.preview.stdout


def test_up_after_kubectl_scale_restores_ten_replicas(scaled: Drift, e2e_cluster: Cluster) -> None:
    assert deployment_status(e2e_cluster)["spec"]["replicas"] == REPLICAS
    assert scaled.repair.complete_on_return


# The policy pack (policy/) runs in a real preview.


@dataclass
class PolicyRun:
    dev: str
    staging_error: str


@pytest.fixture(scope="module")
def policy_run(first_deploy: FirstDeploy, e2e_project: Project) -> PolicyRun:
    # `pulumi preview --policy-pack policy`: the CLI starts the pack through the language host.
    pack = [str(e2e_project.dir / "policy")]
    dev = first_deploy.stack.preview(policy_packs=pack).stdout
    # A stack that is neither dev nor a review stack, left at the default of 1 replica.
    staging = e2e_project.stack("staging")
    set_tag(staging, "0.1")
    try:
        staging.preview(policy_packs=pack)
        error = ""
    except auto.CommandError as failure:
        error = str(failure)
    e2e_project.workspace.remove_stack("staging")
    return PolicyRun(dev, error)


def test_policy_pack_passes_dev_in_a_real_preview(policy_run: PolicyRun) -> None:
    assert "✅ k8s-demo@v0.1.0" in policy_run.dev


def test_policy_pack_refuses_one_replica_outside_dev(policy_run: PolicyRun) -> None:
    assert "replicas-outside-dev" in policy_run.staging_error
    assert "mandatory" in policy_run.staging_error


# h. Idempotence.


def test_second_up_without_change_changes_nothing(scaled: Drift, first_deploy: FirstDeploy) -> None:
    up = first_deploy.stack.up()
    assert set(up.summary.resource_changes or {}) == {"same"}


# e. A rollout that never becomes ready fails within its timeout while the old version serves; then
# a rollback to that broken tag, whose ReplicaSet now exists, fails the same way.


def broken_up(stack: auto.Stack, cluster: Cluster) -> Step:
    stack.set_config("podReadyTimeoutSeconds", auto.ConfigValue(str(SHORT_POD_READY)))
    set_tag(stack, f"0.3{BROKEN_SUFFIX}")
    return watched_up(stack, cluster, expect_failure=True)


def recover(stack: auto.Stack, cluster: Cluster) -> Step:
    """The documented recovery: roll back by tag."""
    set_tag(stack, "0.1")
    stack.remove_config("podReadyTimeoutSeconds")
    return watched_up(stack, cluster)


@pytest.fixture(scope="module")
def failed_rollout(scaled: Drift, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Step:
    return broken_up(first_deploy.stack, e2e_cluster)


@pytest.fixture(scope="module")
def recovered(failed_rollout: Step, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Step:
    return recover(first_deploy.stack, e2e_cluster)


@pytest.fixture(scope="module")
def failed_rollback(recovered: Step, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Step:
    return broken_up(first_deploy.stack, e2e_cluster)


@pytest.fixture(scope="module")
def recovered_again(failed_rollback: Step, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Step:
    return recover(first_deploy.stack, e2e_cluster)


FAILURES = pytest.mark.parametrize("failure", ["failed_rollout", "failed_rollback"])


@KWOK_BROKEN_STAGE
@FAILURES
def test_failure_fails_up(failure: str, request: pytest.FixtureRequest) -> None:
    step: Step = request.getfixturevalue(failure)
    assert step.up is None
    assert step.error


@KWOK_BROKEN_STAGE
@FAILURES
def test_failure_says_why_in_kubernetes_words(failure: str, request: pytest.FixtureRequest) -> None:
    step: Step = request.getfixturevalue(failure)
    # The progress line, which stays in the output: Kubernetes' verdict on the rollout.
    assert DEPLOYMENT in step.error
    assert '(found "ProgressDeadlineExceeded")' in step.error


@KWOK_BROKEN_STAGE
@FAILURES
def test_failure_fails_within_its_timeout(failure: str, request: pytest.FixtureRequest) -> None:
    step: Step = request.getfixturevalue(failure)
    # The await timeout, plus a little for the engine to start, refresh and report.
    assert FAILED_ROLLOUT_TIMEOUT <= step.elapsed < FAILED_ROLLOUT_TIMEOUT + 20


@KWOK_BROKEN_STAGE
@FAILURES
def test_failure_keeps_the_old_version_serving(failure: str, request: pytest.FixtureRequest) -> None:
    step: Step = request.getfixturevalue(failure)
    assert step.watcher.min_available >= REPLICAS - MAX_UNAVAILABLE
    assert step.ready_images_on_return.count(image("0.1")) >= REPLICAS - MAX_UNAVAILABLE


@KWOK_BROKEN_STAGE
def test_the_failed_rollback_returned_to_an_existing_replica_set(failed_rollback: Step, e2e_cluster: Cluster) -> None:
    # Guards the point of the second failure: the broken template's ReplicaSet was reused, not made anew.
    broken = [rs for rs in replica_sets(e2e_cluster).values() if rs["image"] == image(f"0.3{BROKEN_SUFFIX}")]
    assert len(broken) == 1


@KWOK_BROKEN_STAGE
@pytest.mark.parametrize("recovery", ["recovered", "recovered_again"])
def test_rollback_by_tag_recovers_from_a_failed_rollout(recovery: str, request: pytest.FixtureRequest) -> None:
    step: Step = request.getfixturevalue(recovery)
    assert step.complete_on_return
    assert step.images_on_return == [image("0.1")] * REPLICAS


# g. Interrupted updates, and the documented recovery.


@dataclass
class Interrupted:
    error: str
    locked_error: str
    preview_after: auto.PreviewResult
    pending_after: list[Any]


def interrupted_up(stack: auto.Stack, cluster: Cluster, tag: str, sig: signal.Signals) -> Interrupted:
    set_tag(stack, tag)
    failure: list[str] = []

    def run() -> None:
        try:
            stack.up()
        except auto.CommandError as error:
            failure.append(str(error))

    worker = threading.Thread(target=run)
    with recording_pulumi("up") as started:
        worker.start()
        try:
            process = started.get(timeout=60)
        except queue.Empty:
            raise RuntimeError(f"no `pulumi up` started within 60 s: {failure}") from None

    # Interrupt mid-rollout: once the Deployment asks for the new tag and some of its pods exist.
    def rolling() -> bool:
        spec_image = deployment_status(cluster)["spec"]["template"]["spec"]["containers"][0]["image"]
        return bool(spec_image == image(tag) and image(tag) in pod_images(cluster))

    wait_for(lambda: process.poll() is not None or rolling(), timeout=60, what=f"the rollout to {tag}")
    if process.poll() is not None:
        worker.join(timeout=60)
        raise RuntimeError(f"pulumi up exited ({process.returncode}) before the rollout to {tag} was seen: {failure}")
    process.send_signal(sig)
    worker.join(timeout=120)
    locked = ""
    if sig == signal.SIGKILL:
        # A killed CLI cannot release its lock; the next update says so until `pulumi cancel`.
        try:
            stack.refresh()
        except auto.CommandError as error:
            locked = str(error)
        stack.cancel()
    # Documented recovery: refresh the state from the cluster, then up again.
    stack.refresh()
    stack.up()
    pending = checkpoint(stack).get("pending_operations") or []
    return Interrupted(failure[0] if failure else "", locked, stack.preview(), pending)


@pytest.fixture(scope="module")
def sigint(scaled: Drift, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Interrupted:
    # From config's 0.1 on 10 replicas: where the drift repairs left the stack, and, in file order, where
    # the failed rollouts' recoveries (on the sandbox) leave it again.
    return interrupted_up(first_deploy.stack, e2e_cluster, "0.2", signal.SIGINT)


@pytest.fixture(scope="module")
def sigkill(sigint: Interrupted, first_deploy: FirstDeploy, e2e_cluster: Cluster) -> Interrupted:
    return interrupted_up(first_deploy.stack, e2e_cluster, "0.1", signal.SIGKILL)


def test_sigint_stops_the_update(sigint: Interrupted) -> None:
    assert sigint.error


def test_after_sigint_recovery_the_cluster_converges(sigint: Interrupted, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster)
    assert pod_images(e2e_cluster) == [image("0.2")] * REPLICAS


def test_after_sigint_recovery_the_state_is_intact(sigint: Interrupted) -> None:
    assert sigint.pending_after == []
    assert set(sigint.preview_after.change_summary) == {"same"}


def test_sigkill_leaves_the_stack_locked_until_cancel(sigkill: Interrupted) -> None:
    assert "locked" in sigkill.locked_error


def test_after_sigkill_recovery_the_cluster_converges(sigkill: Interrupted, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster)
    assert pod_images(e2e_cluster) == [image("0.1")] * REPLICAS


def test_after_sigkill_recovery_the_state_is_intact(sigkill: Interrupted) -> None:
    assert sigkill.pending_after == []
    assert set(sigkill.preview_after.change_summary) == {"same"}


# f. A review stack with no config file: its own namespace, one replica, then gone.


@dataclass
class ReviewStack:
    replicas: int
    available: int
    had_namespace: bool
    has_namespace_after: bool
    listed_after: bool


@pytest.fixture(scope="module")
def review_stack(sigkill: Interrupted, e2e_project: Project, e2e_cluster: Cluster) -> ReviewStack:
    namespace = "k8s-demo-pr-42"
    # No config at all, as a review stack in CI: the provider finds the sandbox through KUBECONFIG,
    # and the pull request's code (the app's version) is built.
    stack = e2e_project.stack("pr-42", kubeconfig_config=False)
    stack.up()
    deployment = deployment_status(e2e_cluster, namespace)
    had = e2e_cluster.exists("namespace", namespace)
    stack.destroy()
    e2e_project.workspace.remove_stack("pr-42")
    listed = any(s.name == "pr-42" for s in e2e_project.workspace.list_stacks())
    return ReviewStack(
        replicas=deployment["spec"]["replicas"],
        available=deployment["status"].get("availableReplicas", 0),
        had_namespace=had,
        has_namespace_after=e2e_cluster.exists("namespace", namespace),
        listed_after=listed,
    )


def test_review_stack_runs_one_replica_in_its_own_namespace(review_stack: ReviewStack) -> None:
    assert review_stack.had_namespace
    assert (review_stack.replicas, review_stack.available) == (1, 1)


def test_review_stack_destroy_and_rm_leave_nothing(review_stack: ReviewStack) -> None:
    assert not review_stack.has_namespace_after
    assert not review_stack.listed_after


def test_review_stack_never_touched_dev(review_stack: ReviewStack, e2e_cluster: Cluster) -> None:
    assert rollout_complete(e2e_cluster)

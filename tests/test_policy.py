"""The policy pack: each rule on a compliant and a violating resource, then the pack over the real program."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

import policy.__main__ as pack
from components.labels import CANARY_TRACK, TRACK
from ops.offline import MockResource, ProgramRun
from policy import rules
from policy.rules import StackResource
from project import DEPLOYMENT_TYPE, ROOT, SERVICE_TYPE

JOB_TYPE = "kubernetes:batch/v1:Job"
PROBE = {"httpGet": {"path": "/healthz", "port": "http"}}


def _deployment() -> dict[str, Any]:
    """A compliant Deployment as Pulumi sends it: camelCase keys, numbers as floats."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "replicas": 2.0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "version": "1"}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [
                        {
                            "name": "web",
                            "image": "k8s-demo:0.2",
                            "readinessProbe": PROBE,
                            "livenessProbe": PROBE,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "32Mi"},
                                "limits": {"cpu": "200m", "memory": "64Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def _pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = _pod_spec(deployment)["containers"][0]
    return container


def _with_image(image: str) -> dict[str, Any]:
    deployment = _deployment()
    _container(deployment)["image"] = image
    return deployment


def _service(selector: dict[str, str] | None, namespace: str = "ns") -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "NodePort", "ports": [{"port": 80.0}]}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": "svc", "namespace": namespace}, "spec": spec}


# --- image tag ---------------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["k8s-demo:0.2", "registry.example.com:5000/team/app:1.0", "app@sha256:abc123"])
def test_image_with_version_or_digest_passes(image: str) -> None:
    assert rules.image_tag_violations(DEPLOYMENT_TYPE, _with_image(image)) == []


def test_latest_tag_is_a_violation() -> None:
    assert rules.image_tag_violations(DEPLOYMENT_TYPE, _with_image("k8s-demo:latest")) == [
        "container 'web' image 'k8s-demo:latest' uses the 'latest' tag"
    ]


def test_missing_tag_is_a_violation() -> None:
    assert rules.image_tag_violations(DEPLOYMENT_TYPE, _with_image("k8s-demo")) == [
        "container 'web' image 'k8s-demo' has no tag, so it means 'latest'"
    ]


def test_registry_port_is_not_a_tag() -> None:
    violations = rules.image_tag_violations(DEPLOYMENT_TYPE, _with_image("localhost:5000/k8s-demo"))
    assert violations == ["container 'web' image 'localhost:5000/k8s-demo' has no tag, so it means 'latest'"]


def test_empty_image_is_a_violation() -> None:
    assert rules.image_tag_violations(DEPLOYMENT_TYPE, _with_image("")) == ["container 'web' has no image"]


def test_init_container_image_is_checked_too() -> None:
    deployment = _deployment()
    _pod_spec(deployment)["initContainers"] = [{"name": "init", "image": "busybox:latest"}]
    assert rules.image_tag_violations(DEPLOYMENT_TYPE, deployment) == [
        "container 'init' image 'busybox:latest' uses the 'latest' tag"
    ]


def test_image_rule_ignores_objects_without_pods() -> None:
    assert rules.image_tag_violations(SERVICE_TYPE, _service({"app": "web"})) == []


# --- requests and limits -----------------------------------------------------------------------


def test_requests_and_limits_pass() -> None:
    assert rules.resources_violations(DEPLOYMENT_TYPE, _deployment()) == []


def test_missing_memory_limit_is_a_violation() -> None:
    deployment = _deployment()
    del _container(deployment)["resources"]["limits"]["memory"]
    violations = rules.resources_violations(DEPLOYMENT_TYPE, deployment)
    assert violations == ["container 'web' sets no resources limits.memory"]


def test_missing_resources_names_all_four() -> None:
    deployment = _deployment()
    del _container(deployment)["resources"]
    assert rules.resources_violations(DEPLOYMENT_TYPE, deployment) == [
        "container 'web' sets no resources requests.cpu, requests.memory, limits.cpu, limits.memory"
    ]


# --- probes --------------------------------------------------------------------------------------


def test_both_probes_pass() -> None:
    assert rules.probes_violations(DEPLOYMENT_TYPE, _deployment()) == []


def test_missing_liveness_probe_is_a_violation() -> None:
    deployment = _deployment()
    del _container(deployment)["livenessProbe"]
    assert rules.probes_violations(DEPLOYMENT_TYPE, deployment) == ["container 'web' has no livenessProbe"]


def test_job_needs_no_probes() -> None:
    job = {"spec": {"template": {"spec": {"containers": [{"name": "once", "image": "tool:1"}]}}}}
    assert rules.probes_violations(JOB_TYPE, job) == []


# --- runAsNonRoot --------------------------------------------------------------------------------


def test_pod_level_run_as_non_root_passes() -> None:
    assert rules.run_as_non_root_violations(DEPLOYMENT_TYPE, _deployment()) == []


def test_container_level_run_as_non_root_passes() -> None:
    deployment = _deployment()
    del _pod_spec(deployment)["securityContext"]
    _container(deployment)["securityContext"] = {"runAsNonRoot": True}
    assert rules.run_as_non_root_violations(DEPLOYMENT_TYPE, deployment) == []


def test_no_run_as_non_root_is_a_violation() -> None:
    deployment = _deployment()
    del _pod_spec(deployment)["securityContext"]
    assert rules.run_as_non_root_violations(DEPLOYMENT_TYPE, deployment) == [
        "container 'web' may run as root: runAsNonRoot is not true for it or its pod"
    ]


def test_container_false_overrides_pod_true() -> None:
    deployment = _deployment()
    _container(deployment)["securityContext"] = {"runAsNonRoot": False}
    assert len(rules.run_as_non_root_violations(DEPLOYMENT_TYPE, deployment)) == 1


# --- replicas ------------------------------------------------------------------------------------


def _with_replicas(replicas: float | None) -> dict[str, Any]:
    deployment = _deployment()
    if replicas is None:
        del deployment["spec"]["replicas"]
    else:
        deployment["spec"]["replicas"] = replicas
    return deployment


def test_two_replicas_pass_in_prod() -> None:
    assert rules.replicas_violations(DEPLOYMENT_TYPE, _with_replicas(2.0), "prod") == []


def test_one_replica_is_a_violation_in_prod() -> None:
    assert rules.replicas_violations(DEPLOYMENT_TYPE, _with_replicas(1.0), "prod") == [
        "replicas is 1; stack 'prod' must run at least 2"
    ]


def test_a_canarys_single_pod_passes_in_prod() -> None:
    canary = _with_replicas(1.0)
    canary["spec"]["template"]["metadata"]["labels"][TRACK] = CANARY_TRACK
    assert rules.replicas_violations(DEPLOYMENT_TYPE, canary, "prod") == []


def test_the_packs_canary_label_is_the_components() -> None:
    assert rules.CANARY_LABEL == (TRACK, CANARY_TRACK)


def test_missing_replicas_counts_as_one() -> None:
    assert len(rules.replicas_violations(DEPLOYMENT_TYPE, _with_replicas(None), "prod")) == 1


@pytest.mark.parametrize("stack", ["dev", "pr-42"])
def test_one_replica_passes_in_dev_and_review_stacks(stack: str) -> None:
    assert rules.replicas_violations(DEPLOYMENT_TYPE, _with_replicas(1.0), stack) == []


@pytest.mark.parametrize("stack", ["", "pr-abc", "dev2"])
def test_unknown_or_lookalike_stack_needs_two(stack: str) -> None:
    assert rules.min_replicas(stack) == 2


# --- Service selector (stack policy) ---------------------------------------------------------------


def _stack(service: dict[str, Any], deployment: dict[str, Any] | None = None) -> list[StackResource]:
    return [
        StackResource(DEPLOYMENT_TYPE, "urn:deployment", deployment or _deployment()),
        StackResource(SERVICE_TYPE, "urn:service", service),
    ]


def test_selector_matching_pod_labels_passes() -> None:
    assert rules.service_selector_violations(_stack(_service({"app": "web"}))) == []


def test_selector_the_pods_do_not_carry_is_a_violation() -> None:
    violations = rules.service_selector_violations(_stack(_service({"app": "k8s"})))
    assert violations == [
        rules.StackViolation("urn:service", "Service selector {app=k8s} matches no pod template in 'ns'")
    ]


def test_selector_matching_pods_in_another_namespace_is_a_violation() -> None:
    violations = rules.service_selector_violations(_stack(_service({"app": "web"}, namespace="other")))
    assert [violation.urn for violation in violations] == ["urn:service"]


def test_relabelled_pods_break_the_selector() -> None:
    deployment = _deployment()
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "web-v2"}
    assert len(rules.service_selector_violations(_stack(_service({"app": "web"}), deployment))) == 1


def test_service_without_selector_is_not_checked() -> None:
    assert rules.service_selector_violations(_stack(_service(None))) == []


# --- the pack, through pulumi-policy, over the program's own resources ----------------------------


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def _urn(stack: str, resource: MockResource) -> str:
    return f"urn:pulumi:{stack}::k8s-demo::{resource.type}::{resource.name}"


def run_pack(stack: str, resources: list[MockResource]) -> list[str]:
    """Every violation every policy of the pack reports over ``resources``, as ``policy: message``."""
    reported: list[str] = []
    for policy in pack.POLICIES:

        def report(message: str, urn: str | None, name: str = policy.name) -> None:
            reported.append(f"{name}: {message}")

        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.type,
                    copy.deepcopy(resource.inputs),
                    _urn(stack, resource),
                    resource.name,
                    _options(),
                    None,
                )
                policy.validate(args, report)
        elif isinstance(policy, StackValidationPolicy):
            everything = [
                PolicyResource(r.type, r.outputs, _urn(stack, r), r.name, _options(), None, None, [], {})
                for r in resources
            ]
            policy.validate(StackValidationArgs(everything), report)
    return reported


def test_pack_has_every_policy_once() -> None:
    assert sorted(policy.name for policy in pack.POLICIES) == [
        "cpu-and-memory-requests-and-limits",
        "image-tag-names-a-version",
        "readiness-and-liveness-probes",
        "replicas-outside-dev",
        "run-as-non-root",
        "service-selects-pods",
    ]


@pytest.mark.parametrize("stack", ["dev", "prod", "pr-42"])
def test_program_resources_violate_no_policy(
    stack_runs: dict[str, ProgramRun], stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_STACK", stack)
    assert run_pack(stack, stack_runs[stack].resources) == []


def test_pack_reads_the_stack_from_the_engine_environment(review: ProgramRun, monkeypatch: pytest.MonkeyPatch) -> None:
    # The review stack's single replica, judged as if it were deployed to prod.
    monkeypatch.setenv("PULUMI_STACK", "prod")
    assert run_pack("prod", [review.one(DEPLOYMENT_TYPE)]) == [
        "replicas-outside-dev: replicas is 1; stack 'prod' must run at least 2"
    ]


def test_pack_reports_a_broken_service_selector(dev: ProgramRun) -> None:
    resources = [copy.deepcopy(resource) for resource in dev.resources]
    (deployment,) = [resource for resource in resources if resource.type == DEPLOYMENT_TYPE]
    deployment.outputs["spec"]["template"]["metadata"]["labels"] = {"app": "k8s"}
    reported = run_pack("dev", resources)
    assert [line.split(":")[0] for line in reported] == ["service-selects-pods"]


# How Pulumi starts the pack: `python -m pulumi.policy <engine> <pack dir>` from the pack's directory, which
# runs policy/__main__.py with only policy/ on sys.path. The project comes from the editable install.
PACK_PROBE = """
import json, runpy, sys
from pathlib import Path

pack = runpy.run_path(".", run_name="pack_probe")  # not "__main__": the analyzer's server is not started
from project import ROOT

print(json.dumps({
    "rules": sys.modules["policy.rules"].__file__,
    "project": sys.modules["project"].__file__,
    "policies": [policy.name for policy in pack["POLICIES"]],
    "root_on_path": any(Path(entry or ".").resolve() == ROOT for entry in sys.path),
}))
"""


@pytest.fixture(scope="module")
def pack_started_as_pulumi_does() -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    started = subprocess.run(
        [sys.executable, "-c", PACK_PROBE],
        cwd=ROOT / "policy",
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    probe: dict[str, Any] = json.loads(started.stdout)
    return probe


def test_pack_imports_its_rules_from_the_project(pack_started_as_pulumi_does: dict[str, Any]) -> None:
    assert pack_started_as_pulumi_does["rules"] == str(ROOT / "policy" / "rules.py")


def test_pack_imports_the_project_module(pack_started_as_pulumi_does: dict[str, Any]) -> None:
    assert pack_started_as_pulumi_does["project"] == str(ROOT / "project.py")


def test_pack_needs_no_project_root_on_sys_path(pack_started_as_pulumi_does: dict[str, Any]) -> None:
    assert pack_started_as_pulumi_does["root_on_path"] is False


def test_pack_registers_every_policy(pack_started_as_pulumi_does: dict[str, Any]) -> None:
    assert pack_started_as_pulumi_does["policies"] == [policy.name for policy in pack.POLICIES]

"""The whole program under mocks, per stack: the tutorial's rows, as k8s-demo does them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import docker_engine
from components.labels import INSTANCE, NAME
from components.webapp import CONTAINER_PORT, HEALTH_PATH, PORT_NAME, RUN_AS_ID
from ops.offline import MOCKED_ENGINE_PLATFORM, MOCKED_NODE_PORT, ClusterMocks, ProgramRun, run_program
from project import (
    DEPLOYMENT_TYPE,
    IMAGE_TYPE,
    NAMESPACE_TYPE,
    NETWORK_POLICY_TYPE,
    ROOT,
    SERVICE_TYPE,
    config_key,
)
from tests.examples import example_config

STACKS = ("dev", "prod", "pr-42")
APP_VERSION = (ROOT / "app" / "VERSION").read_text().strip()


def spec(run: ProgramRun, type_token: str) -> dict[str, Any]:
    return dict(run.one(type_token).inputs["spec"])


def container(run: ProgramRun) -> dict[str, Any]:
    containers = spec(run, DEPLOYMENT_TYPE)["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


# Row 14 and the tutorial's label bug: one source of labels, so they always match.


@pytest.mark.parametrize("stack", STACKS)
def test_service_selects_exactly_the_deployment_pods(stack_runs: dict[str, ProgramRun], stack: str) -> None:
    run = stack_runs[stack]
    deployment = spec(run, DEPLOYMENT_TYPE)
    pod_labels = deployment["template"]["metadata"]["labels"]
    service_selector = spec(run, SERVICE_TYPE)["selector"]
    assert deployment["selector"]["matchLabels"] == service_selector
    assert service_selector.items() <= pod_labels.items()


@pytest.mark.parametrize("stack", STACKS)
def test_selector_is_name_and_instance_only(stack_runs: dict[str, ProgramRun], stack: str) -> None:
    selector = spec(stack_runs[stack], DEPLOYMENT_TYPE)["selector"]["matchLabels"]
    assert selector == {NAME: "k8s-demo", INSTANCE: f"k8s-demo-{stack}"}


@pytest.mark.parametrize("stack", STACKS)
def test_network_policy_selects_the_same_pods(stack_runs: dict[str, ProgramRun], stack: str) -> None:
    run = stack_runs[stack]
    assert spec(run, NETWORK_POLICY_TYPE)["podSelector"]["matchLabels"] == spec(run, SERVICE_TYPE)["selector"]


# Rows 6 and 9: desired state and rollout settings from stack config.


def test_dev_runs_the_tutorials_ten_replicas(dev: ProgramRun) -> None:
    assert spec(dev, DEPLOYMENT_TYPE)["replicas"] == 10


def test_dev_rolls_out_like_the_tutorial(dev: ProgramRun) -> None:
    deployment = spec(dev, DEPLOYMENT_TYPE)
    assert deployment["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    assert deployment["minReadySeconds"] == 3


def test_review_stack_runs_one_replica(review: ProgramRun) -> None:
    assert spec(review, DEPLOYMENT_TYPE)["replicas"] == 1


def test_prod_takes_percentages_and_its_own_replica_count(prod: ProgramRun) -> None:
    deployment = spec(prod, DEPLOYMENT_TYPE)
    assert deployment["replicas"] == 4
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert deployment["minReadySeconds"] == 10


def test_progress_deadline_follows_the_rollout_settings(dev: ProgramRun) -> None:
    # Two batch budgets of (podReadyTimeoutSeconds 30 + minReadySeconds 3).
    assert spec(dev, DEPLOYMENT_TYPE)["progressDeadlineSeconds"] == 66


# Rows 3 and 5: pods only come from the Deployment.


@pytest.mark.parametrize("stack", STACKS)
def test_no_bare_pods_or_replicasets(stack_runs: dict[str, ProgramRun], stack: str) -> None:
    types = {resource.type for resource in stack_runs[stack].resources}
    assert not {t for t in types if t.endswith(":Pod") or t.endswith(":ReplicaSet")}


def test_deployment_uses_apps_v1(dev: ProgramRun) -> None:
    assert dev.one(DEPLOYMENT_TYPE).inputs["apiVersion"] == "apps/v1"


# Row 4: reaching the pods from outside.


def test_service_is_node_port_to_the_named_container_port(dev: ProgramRun) -> None:
    service = spec(dev, SERVICE_TYPE)
    assert service["type"] == "NodePort"
    assert service["ports"] == [{"name": PORT_NAME, "protocol": "TCP", "port": 80, "targetPort": PORT_NAME}]
    assert container(dev)["ports"] == [{"name": PORT_NAME, "containerPort": CONTAINER_PORT}]


def test_node_port_is_assigned_by_the_cluster_when_unset(dev: ProgramRun) -> None:
    assert dev.outputs["nodePort"] == MOCKED_NODE_PORT
    assert dev.outputs["url"] == f"http://127.0.0.1:{MOCKED_NODE_PORT}/"


def test_node_port_is_fixed_by_config(prod: ProgramRun) -> None:
    assert spec(prod, SERVICE_TYPE)["ports"][0]["nodePort"] == 30080
    assert prod.outputs["url"] == "http://127.0.0.1:30080/"


def test_preview_before_the_port_is_assigned_has_no_url() -> None:
    run = run_program("dev", example_config("dev"), preview=True, mocks=ClusterMocks(assign_node_ports=False))
    assert (run.outputs["nodePort"], run.outputs["url"]) == (None, None)


def test_node_address_sets_the_url_host(run_dev_with: Callable[..., ProgramRun]) -> None:
    run = run_dev_with(nodeAddress="192.168.49.2")
    assert run.outputs["url"] == f"http://192.168.49.2:{MOCKED_NODE_PORT}/"


# Stack isolation: every stack in its own namespace.


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_gets_its_own_namespace(stack_runs: dict[str, ProgramRun], stack: str) -> None:
    run = stack_runs[stack]
    expected = f"k8s-demo-{stack}"
    assert run.one(NAMESPACE_TYPE).inputs["metadata"]["name"] == expected
    namespaced = [r for r in run.resources if r.type.startswith("kubernetes:") and r.type != NAMESPACE_TYPE]
    assert {r.inputs["metadata"]["namespace"] for r in namespaced} == {expected}
    assert run.outputs["namespace"] == expected


def test_namespace_can_be_set(run_dev_with: Callable[..., ProgramRun]) -> None:
    run = run_dev_with(namespace="team-a")
    assert run.one(NAMESPACE_TYPE).inputs["metadata"]["name"] == "team-a"


def test_namespace_enforces_restricted_pod_security(dev: ProgramRun) -> None:
    labels = dev.one(NAMESPACE_TYPE).inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# Rows 2, 8 and 13: build today's version, deploy other tags as they are.


def test_app_version_tag_builds_app_exactly_once(dev: ProgramRun) -> None:
    builds = dev.of_type(IMAGE_TYPE)
    assert len(builds) == 1
    assert builds[0].inputs["imageName"] == f"k8s-demo:{APP_VERSION}"
    assert builds[0].inputs["build"] == {"context": "app", "dockerfile": "app/Dockerfile", "platform": "linux/amd64"}
    assert dev.outputs["imageBuilt"] is True


def test_the_build_is_for_the_platform_of_the_engine_that_builds(dev: ProgramRun) -> None:
    assert dev.one(IMAGE_TYPE).inputs["build"]["platform"] == MOCKED_ENGINE_PLATFORM


def test_build_platform_config_names_another_platform(run_dev_with: Callable[..., ProgramRun]) -> None:
    assert run_dev_with(buildPlatform="linux/arm64").one(IMAGE_TYPE).inputs["build"]["platform"] == "linux/arm64"


def test_the_engine_asked_for_its_platform_is_the_stacks_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str | None] = []

    def platform(host: object = None, configured: str | None = None) -> str:
        asked.append(configured)
        return "linux/s390x"

    monkeypatch.setattr(docker_engine, "engine_platform", platform)
    run = run_program("dev", {**example_config("dev"), "docker:host": "unix:///run/other-engine.sock"})
    assert (asked, run.one(IMAGE_TYPE).inputs["build"]["platform"]) == (
        ["unix:///run/other-engine.sock"],
        "linux/s390x",
    )


def test_local_build_is_not_pushed_and_is_deployed_by_tag(dev: ProgramRun) -> None:
    assert dev.one(IMAGE_TYPE).inputs["skipPush"] is True
    assert container(dev)["image"] == f"k8s-demo:{APP_VERSION}"


def test_pushed_build_is_deployed_by_digest(prod: ProgramRun) -> None:
    assert prod.one(IMAGE_TYPE).inputs["skipPush"] is False
    assert re.fullmatch(r"registry\.example\.com/k8s-demo/k8s-demo@sha256:[0-9a-f]{64}", container(prod)["image"])


def test_rollback_by_tag_builds_nothing(run_dev_with: Callable[..., ProgramRun]) -> None:
    run = run_dev_with(imageTag="0.1")
    assert run.of_type(IMAGE_TYPE) == []
    assert container(run)["image"] == "k8s-demo:0.1"
    assert run.outputs["imageBuilt"] is False


def test_rollback_by_tag_keeps_the_repository(run_dev_with: Callable[..., ProgramRun]) -> None:
    run = run_dev_with(imageTag="0.1", imageRepository="registry.example.com/k8s-demo")
    assert run.of_type(IMAGE_TYPE) == []
    assert container(run)["image"] == "registry.example.com/k8s-demo:0.1"


def test_a_promoted_digest_is_deployed_as_is_and_nothing_is_built() -> None:
    # A promotion pins the digest dev ran, even under the tag prod would otherwise build.
    digest = "sha256:" + "cd" * 32
    keys = {config_key("imageTag"): APP_VERSION, config_key("imageDigest"): digest}
    run = run_program("prod", {**example_config("prod"), **keys})
    assert run.of_type(IMAGE_TYPE) == []
    assert container(run)["image"] == f"registry.example.com/k8s-demo/k8s-demo@{digest}"
    assert run.outputs["imageBuilt"] is False


# Rows 10 and 12: the cause of each change is recorded on the Deployment.


def test_change_cause_names_the_tag_and_the_stack(run_dev_with: Callable[..., ProgramRun]) -> None:
    annotations = run_dev_with(imageTag="0.1").one(DEPLOYMENT_TYPE).inputs["metadata"]["annotations"]
    assert annotations["kubernetes.io/change-cause"] == "pulumi up: image k8s-demo:0.1, stack dev"


def test_local_image_is_exempt_from_registry_scans(dev: ProgramRun) -> None:
    annotations = dev.one(DEPLOYMENT_TYPE).inputs["metadata"]["annotations"]
    assert annotations["checkov.io/skip1"].startswith("CKV_K8S_15=")
    assert annotations["checkov.io/skip2"].startswith("CKV_K8S_43=")


def test_a_local_image_is_never_pulled(dev: ProgramRun) -> None:
    # A missing local image is then ErrImageNeverPull at once, not a pull from a registry that cannot have it.
    assert container(dev)["imagePullPolicy"] == "Never"


def test_a_registry_image_is_pulled_when_the_node_lacks_it(prod: ProgramRun) -> None:
    assert container(prod)["imagePullPolicy"] == "IfNotPresent"


def test_registry_image_gets_no_scan_exemption(prod: ProgramRun) -> None:
    annotations = prod.one(DEPLOYMENT_TYPE).inputs["metadata"]["annotations"]
    assert set(annotations) == {"kubernetes.io/change-cause", "pulumi.com/waitFor", "pulumi.com/patchForce"}


# `pulumi up` waits for the rollout as `kubectl rollout status` does.


def wait_for(run: ProgramRun) -> list[str]:
    return list(json.loads(run.one(DEPLOYMENT_TYPE).inputs["metadata"]["annotations"]["pulumi.com/waitFor"]))


def test_up_waits_for_kubernetes_verdict_then_every_count(dev: ProgramRun) -> None:
    assert wait_for(dev) == [
        'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewReplicaSetAvailable',
        "jsonpath={.status.updatedReplicas}=10",
        "jsonpath={.status.readyReplicas}=10",
        "jsonpath={.status.availableReplicas}=10",
        "jsonpath={.status.replicas}=10",
    ]


def test_up_waits_for_the_configured_replica_count(run_dev_with: Callable[..., ProgramRun]) -> None:
    assert wait_for(run_dev_with(replicas="3"))[1:] == [
        "jsonpath={.status.updatedReplicas}=3",
        "jsonpath={.status.readyReplicas}=3",
        "jsonpath={.status.availableReplicas}=3",
        "jsonpath={.status.replicas}=3",
    ]


def test_zero_replicas_waits_for_the_verdict_alone(run_dev_with: Callable[..., ProgramRun]) -> None:
    # Kubernetes omits zero counts from the status; a count condition could never match.
    assert wait_for(run_dev_with(replicas="0")) == [
        'jsonpath={.status.conditions[?(@.type=="Progressing")].reason}=NewReplicaSetAvailable'
    ]


# Every update, preview and destroy reads the cluster first.


@pytest.mark.parametrize("type_token", [NAMESPACE_TYPE, DEPLOYMENT_TYPE, SERVICE_TYPE, NETWORK_POLICY_TYPE])
def test_config_takes_back_fields_a_kubectl_change_took(dev: ProgramRun, type_token: str) -> None:
    assert dev.one(type_token).inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"


def test_project_refreshes_before_every_update_and_preview() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["options"] == {"refresh": "always"}


def test_release_changes_only_the_deployment(run_dev_with: Callable[..., ProgramRun]) -> None:
    old, new = run_dev_with(imageTag="0.1"), run_dev_with(imageTag="0.3")
    for type_token in (NAMESPACE_TYPE, SERVICE_TYPE, NETWORK_POLICY_TYPE):
        assert old.one(type_token).inputs == new.one(type_token).inputs
    assert old.one(DEPLOYMENT_TYPE).inputs != new.one(DEPLOYMENT_TYPE).inputs


def test_version_label_is_on_the_workload_only(dev: ProgramRun) -> None:
    assert spec(dev, DEPLOYMENT_TYPE)["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == APP_VERSION
    assert dev.one(DEPLOYMENT_TYPE).inputs["metadata"]["labels"]["app.kubernetes.io/version"] == APP_VERSION
    assert "app.kubernetes.io/version" not in dev.one(SERVICE_TYPE).inputs["metadata"]["labels"]


def test_revision_history_is_kept(dev: ProgramRun) -> None:
    assert spec(dev, DEPLOYMENT_TYPE)["revisionHistoryLimit"] == 10


# Secure, boring pods.


def test_probes_hit_the_health_endpoint(dev: ProgramRun) -> None:
    c = container(dev)
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": HEALTH_PATH, "port": PORT_NAME}


def test_stopping_pod_drains_before_nginx_quits(dev: ProgramRun) -> None:
    assert container(dev)["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}


def test_grace_period_covers_the_drain_and_a_graceful_quit(dev: ProgramRun) -> None:
    assert spec(dev, DEPLOYMENT_TYPE)["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_image_stops_nginx_gracefully() -> None:
    dockerfile = (ROOT / "app" / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^STOPSIGNAL (\S+)$", dockerfile, flags=re.MULTILINE) == ["SIGQUIT"]


def test_resources_have_requests_and_limits(dev: ProgramRun) -> None:
    assert container(dev)["resources"] == {
        "requests": {"cpu": "50m", "memory": "32Mi"},
        "limits": {"cpu": "200m", "memory": "64Mi"},
    }


def test_container_is_locked_down(dev: ProgramRun) -> None:
    assert container(dev)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "capabilities": {"drop": ["ALL"]},
    }


def test_pod_runs_non_root_with_runtime_default_seccomp(dev: ProgramRun) -> None:
    pod = spec(dev, DEPLOYMENT_TYPE)["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_only_tmp_is_writable(dev: ProgramRun) -> None:
    pod = spec(dev, DEPLOYMENT_TYPE)["template"]["spec"]
    assert container(dev)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]


def test_network_policy_admits_only_the_app_port(dev: ProgramRun) -> None:
    policy = spec(dev, NETWORK_POLICY_TYPE)
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": CONTAINER_PORT}]}]
    assert not policy.get("egress")


# The image and the objects agree on the port, the probe path and the user.


def test_nginx_listens_on_the_container_port() -> None:
    conf = (ROOT / "app" / "nginx.conf").read_text()
    assert set(re.findall(r"^\s*listen\s+(?:\[::\]:)?(\d+);", conf, re.M)) == {str(CONTAINER_PORT)}


def test_nginx_serves_the_health_path() -> None:
    conf = (ROOT / "app" / "nginx.conf").read_text()
    assert re.search(rf"location = {re.escape(HEALTH_PATH)} \{{[^}}]*return 200", conf)


def test_dockerfile_user_and_port_match_the_pod() -> None:
    dockerfile = Path(ROOT / "app" / "Dockerfile").read_text()
    assert re.search(rf"^USER {RUN_AS_ID}:{RUN_AS_ID}$", dockerfile, re.M)
    assert re.search(rf"^EXPOSE {CONTAINER_PORT}$", dockerfile, re.M)


# Outputs.


def test_dev_outputs(dev: ProgramRun) -> None:
    assert dev.outputs == {
        "namespace": "k8s-demo-dev",
        "deploymentName": "k8s-demo-deployment",
        "serviceName": "k8s-demo-svc",
        "image": f"k8s-demo:{APP_VERSION}",
        "imageBuilt": True,
        "nodePort": MOCKED_NODE_PORT,
        "url": f"http://127.0.0.1:{MOCKED_NODE_PORT}/",
    }


def test_zero_replicas_does_not_wait_for_endpoints(run_dev_with: Callable[..., ProgramRun]) -> None:
    run = run_dev_with(replicas="0")
    assert spec(run, DEPLOYMENT_TYPE)["replicas"] == 0
    assert run.one(SERVICE_TYPE).inputs["metadata"]["annotations"] == {
        "pulumi.com/skipAwait": "true",
        "pulumi.com/patchForce": "true",
    }


def test_service_waits_for_endpoints_when_there_are_pods(dev: ProgramRun) -> None:
    assert "pulumi.com/skipAwait" not in dev.one(SERVICE_TYPE).inputs["metadata"]["annotations"]

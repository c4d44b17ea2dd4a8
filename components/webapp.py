"""The web app: its namespace, Deployment, NodePort Service and NetworkPolicy."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.labels import canary_labels, canary_selector_labels, object_labels, selector_labels, workload_labels
from components.rollout import RolloutPlan
from components.values import NODE_PORT_MAX, NODE_PORT_MIN, Resources
from project import WEBAPP_TYPE

#: Port the image listens on (app/nginx.conf): unprivileged, so not 80.
CONTAINER_PORT = 8080
#: Name of the container port; the Service targets it by name.
PORT_NAME = "http"
#: Port the Service exposes inside the cluster, as in the tutorial.
SERVICE_PORT = 80
#: Probe path served by app/nginx.conf.
HEALTH_PATH = "/healthz"
#: UID and GID the pod runs as (app/Dockerfile's USER): high, owning nothing.
RUN_AS_ID = 10101
#: ReplicaSets kept for ``kubectl rollout history`` and ``rollout undo``.
REVISION_HISTORY_LIMIT = 10
#: Names inside the stack's own namespace, as in the tutorial.
DEPLOYMENT_NAME = "k8s-demo-deployment"
#: The canary Deployment of a canary release (rolloutStrategy canary), beside the stable one.
CANARY_DEPLOYMENT_NAME = "k8s-demo-canary"
SERVICE_NAME = "k8s-demo-svc"
APP_POLICY_NAME = "k8s-demo-allow-http"
#: Writable scratch space nginx needs under a read-only root filesystem (pid, temp files).
SCRATCH_SIZE = "16Mi"
#: Seconds a stopping pod keeps serving before nginx is told to quit (the preStop hook):
#: the time for the endpoint controllers and every node's kube-proxy to stop sending
#: it new connections. Without it, a pod removed in a rollout, a rollback or a scale-down
#: refuses the connections still routed to it (measured in the sandbox: make e2e).
DRAIN_SECONDS = 5
#: Seconds Kubernetes waits, from the start of the preStop hook, before it kills the
#: pod: the drain, then nginx's graceful quit (SIGQUIT, app/Dockerfile's STOPSIGNAL)
#: finishing the requests in flight.
TERMINATION_GRACE_SECONDS = DRAIN_SECONDS + 25
#: Cause recorded on the Deployment, read back by ``kubectl rollout history``.
CHANGE_CAUSE = "kubernetes.io/change-cause"
#: The provider's annotation that makes ``pulumi up`` go on without waiting for an object to be ready.
SKIP_AWAIT = "pulumi.com/skipAwait"
#: The provider's await override: JSONPath conditions that must all hold before ``pulumi up`` goes on.
WAIT_FOR = "pulumi.com/waitFor"
#: Server-side apply takes back, for stack config, every field that a kubectl change
#: (``rollout undo``, ``scale``, ``edit``) made its own; without it the next update
#: stops at the field conflict instead of restoring what config says.
FORCE_OWNERSHIP = {"pulumi.com/patchForce": "true"}
#: The pull policy of a local image (no registry): the node's image store has it, or no pull could get it.
LOCAL_IMAGE_PULL_POLICY = "Never"
#: The Progressing reason the Deployment controller sets once a rollout is complete.
ROLLOUT_COMPLETE_REASON = "NewReplicaSetAvailable"
#: Checkov checks that cannot hold for a local image (in no registry); see docs/checks.md.
#: Checkov reads ``<check id>=<reason>`` and splits on "=", so a reason must not contain one.
LOCAL_IMAGE_CHECKOV_SKIPS = {
    "checkov.io/skip1": (
        "CKV_K8S_15=A local-cluster image is in no registry: pull policy Always would fail every pull. "
        "Registry images are deployed by digest and pass this check."
    ),
    "checkov.io/skip2": (
        "CKV_K8S_43=A local-cluster image is never pushed so it has no registry digest. "
        "Registry images are deployed by digest and pass this check."
    ),
}


@dataclass(frozen=True, kw_only=True)
class CanaryArgs:
    """The canary of a canary release: ``replicas`` pods (>= 1) of ``image`` (tag ``version``) beside the stable ones.

    ``change_cause`` is recorded on its Deployment as on the stable one.
    """

    image: pulumi.Input[str]
    version: str
    replicas: int
    change_cause: str

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"a canary needs at least 1 replica, got {self.replicas}")


@dataclass(frozen=True, kw_only=True)
class WebAppArgs:
    """Shape of the web app. Every field is a plain value but ``image``.

    ``image`` is the reference to run, usually the image component's output.
    ``local_image`` says it lives only in the cluster's local image store (no
    registry): it is never pulled (``LOCAL_IMAGE_PULL_POLICY``), and is exempt from
    the pull-policy and digest scans.
    ``rollout`` gives the replicas, the rolling-update bounds and the time
    ``pulumi up`` waits for a rollout; ``node_port`` None lets the cluster
    assign one. ``canary`` (default None: none) adds a canary Deployment.
    """

    namespace: str
    image: pulumi.Input[str]
    local_image: bool
    version: str
    change_cause: str
    rollout: RolloutPlan
    node_port: int | None
    resources: Resources
    canary: CanaryArgs | None = None

    def __post_init__(self) -> None:
        # Kubernetes would reject it mid-update; checked at construction (the plan checks its own).
        if self.node_port is not None and not NODE_PORT_MIN <= self.node_port <= NODE_PORT_MAX:
            raise ValueError(f"node_port must be in {NODE_PORT_MIN}-{NODE_PORT_MAX}, got {self.node_port}")


class WebApp(pulumi.ComponentResource):
    """Namespace, Deployment (rolling update, probes, hardened pods), NodePort Service, NetworkPolicy.

    With ``args.canary``, a canary Deployment too: pods that carry the
    Service's selector labels (so they take their share of its traffic by pod
    count) and a track label of their own, while the stable Deployment is
    exactly what it would be without it.
    """

    namespace: pulumi.Output[str]
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    image: pulumi.Output[str]
    node_port: pulumi.Output[int | None]

    def _canary(
        self, name: str, args: WebAppArgs, canary: CanaryArgs, ns: k8s.core.v1.Namespace, opts: pulumi.ResourceOptions
    ) -> None:
        """The canary Deployment: the stable pod template with the canary's image and labels.

        ``pulumi up`` does not wait for it (``skipAwait``): ``make up`` watches its
        pods itself, so that a pod that crashes or never gets ready aborts the
        canary within seconds, not after a progress deadline.
        """
        labels = canary_labels(args.namespace, canary.version)
        k8s.apps.v1.Deployment(
            f"{name}-canary",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CANARY_DEPLOYMENT_NAME,
                namespace=ns.metadata.name,
                labels=labels,
                annotations={
                    CHANGE_CAUSE: canary.change_cause,
                    SKIP_AWAIT: "true",
                    **FORCE_OWNERSHIP,
                    **(LOCAL_IMAGE_CHECKOV_SKIPS if args.local_image else {}),
                },
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=canary.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=canary_selector_labels(args.namespace)),
                min_ready_seconds=args.rollout.min_ready_seconds,
                progress_deadline_seconds=args.rollout.progress_deadline_seconds,
                revision_history_limit=REVISION_HISTORY_LIMIT,
                template=_pod_template(args, canary.image, labels),
            ),
            opts=opts,
        )

    def __init__(self, name: str, args: WebAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(WEBAPP_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        instance = args.namespace
        labels = object_labels(instance)
        versioned = workload_labels(instance, args.version)
        selector = selector_labels(instance)

        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                annotations=FORCE_OWNERSHIP,
                labels={
                    **labels,
                    # The pods meet the "restricted" Pod Security Standard; make the namespace insist on it.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            ),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        # Pulumi waits for the rollout (and the Service for its endpoints); this bounds
        # the wait by the rollout settings instead of the provider's 10 minutes.
        rollout_wait = pulumi.ResourceOptions.merge(
            in_namespace,
            pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{args.rollout.most_wait_seconds}s",
                    update=f"{args.rollout.most_wait_seconds}s",
                ),
            ),
        )

        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DEPLOYMENT_NAME,
                namespace=ns.metadata.name,
                labels=versioned,
                annotations={
                    CHANGE_CAUSE: args.change_cause,
                    WAIT_FOR: json.dumps(rollout_complete_conditions(args.rollout.replicas)),
                    **FORCE_OWNERSHIP,
                    **(LOCAL_IMAGE_CHECKOV_SKIPS if args.local_image else {}),
                },
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.rollout.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                min_ready_seconds=args.rollout.min_ready_seconds,
                progress_deadline_seconds=args.rollout.progress_deadline_seconds,
                revision_history_limit=REVISION_HISTORY_LIMIT,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_surge=args.rollout.max_surge,
                        max_unavailable=args.rollout.max_unavailable,
                    ),
                ),
                template=_pod_template(args, args.image, versioned),
            ),
            opts=rollout_wait,
        )
        if args.canary is not None:
            self._canary(name, args, args.canary, ns, in_namespace)

        service_annotations = dict(FORCE_OWNERSHIP)
        if args.rollout.replicas == 0:
            # With no pods the Service can never get endpoints; do not wait for them.
            service_annotations[SKIP_AWAIT] = "true"
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SERVICE_NAME,
                namespace=ns.metadata.name,
                labels=labels,
                annotations=service_annotations,
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="NodePort",
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=PORT_NAME,
                        protocol="TCP",
                        port=SERVICE_PORT,
                        target_port=PORT_NAME,
                        node_port=args.node_port,
                    )
                ],
            ),
            opts=rollout_wait,
        )

        # Admit traffic to the app's port only, and let the pods open no connections:
        # a static site needs none.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP_POLICY_NAME, namespace=ns.metadata.name, labels=labels, annotations=FORCE_OWNERSHIP
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=CONTAINER_PORT)],
                    )
                ],
                egress=[],
            ),
            opts=in_namespace,
        )

        self.namespace = ns.metadata.name
        self.deployment_name = deployment.metadata.name
        self.service_name = service.metadata.name
        self.image = pulumi.Output.from_input(args.image)
        # The cluster assigns the node port when none is configured; read it back from the Service.
        self.node_port = service.spec.apply(_assigned_node_port)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "deployment_name": self.deployment_name,
                "service_name": self.service_name,
                "image": self.image,
                "node_port": self.node_port,
            }
        )


def rollout_complete_conditions(replicas: int) -> list[str]:
    """The Deployment's ``pulumi.com/waitFor`` conditions: ``kubectl rollout status``'s "done".

    The provider's built-in Deployment await (4.25 to at least 4.32) trusts a
    ``Progressing`` condition and a ReplicaSet's own replica count that are
    still those of the previous rollout when a change returns to a template
    whose ReplicaSet exists (every rollback by tag, every drift repair), so
    ``pulumi up`` returned mid-rollout. JSONPath conditions are checked only
    once ``.status.observedGeneration`` has caught up with the change, and
    each must hold at once:

    - Kubernetes' own verdict first, so the progress line shows its reason
      while waiting (``ReplicaSetUpdated``, or ``ProgressDeadlineExceeded``
      when the rollout is stuck);
    - then the counts: every pod updated, ready and available, and no pod of
      another template left (``.status.replicas``).

    With 0 replicas Kubernetes leaves the counts out of the status, so only
    the verdict is checked.
    """
    verdict = f'jsonpath={{.status.conditions[?(@.type=="Progressing")].reason}}={ROLLOUT_COMPLETE_REASON}'
    if replicas == 0:
        return [verdict]
    counts = ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")
    return [verdict, *(f"jsonpath={{.status.{field}}}={replicas}" for field in counts)]


def _assigned_node_port(spec: k8s.core.v1.outputs.ServiceSpec) -> int | None:
    # None in the preview of a new Service: the cluster has not assigned a port yet.
    ports = spec.ports or []
    return ports[0].node_port if ports else None


def node_url(address: str, node_port: int | None) -> str | None:
    """``http://<address>:<node_port>/``, or None while the node port is not yet assigned."""
    return None if node_port is None else f"http://{address}:{node_port}/"


def _pod_template(
    args: WebAppArgs, image: pulumi.Input[str], labels: dict[str, str]
) -> k8s.core.v1.PodTemplateSpecArgs:
    """Pod template of ``image``: non-root, read-only root, no capabilities, probed on the health path."""
    probe_action = k8s.core.v1.HTTPGetActionArgs(path=HEALTH_PATH, port=PORT_NAME)
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
        spec=k8s.core.v1.PodSpecArgs(
            # The site calls no Kubernetes API and needs no service links.
            automount_service_account_token=False,
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            enable_service_links=False,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=RUN_AS_ID,
                run_as_group=RUN_AS_ID,
                fs_group=RUN_AS_ID,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            containers=[
                k8s.core.v1.ContainerArgs(
                    name="web",
                    image=image,
                    # Local images (docker-desktop, minikube, kind) are never in a registry: a pull could only
                    # fail, slowly and in a registry's words, so a missing one is named at once (ErrImageNeverPull).
                    # Pushed images are pinned by digest, so pulling again gains nothing.
                    image_pull_policy=LOCAL_IMAGE_PULL_POLICY if args.local_image else "IfNotPresent",
                    ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=CONTAINER_PORT)],
                    readiness_probe=k8s.core.v1.ProbeArgs(
                        http_get=probe_action, period_seconds=5, timeout_seconds=2, failure_threshold=3
                    ),
                    # Keep serving while the pod leaves the Service's endpoints (an exec
                    # hook: the sleep action needs Kubernetes 1.30+, and 1.29 is supported).
                    lifecycle=k8s.core.v1.LifecycleArgs(
                        pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                            exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(DRAIN_SECONDS)])
                        )
                    ),
                    liveness_probe=k8s.core.v1.ProbeArgs(
                        http_get=probe_action,
                        initial_delay_seconds=5,
                        period_seconds=10,
                        timeout_seconds=2,
                        failure_threshold=3,
                    ),
                    resources=k8s.core.v1.ResourceRequirementsArgs(
                        requests={"cpu": args.resources.cpu_request, "memory": args.resources.memory_request},
                        limits={"cpu": args.resources.cpu_limit, "memory": args.resources.memory_limit},
                    ),
                    security_context=k8s.core.v1.SecurityContextArgs(
                        allow_privilege_escalation=False,
                        privileged=False,
                        read_only_root_filesystem=True,
                        run_as_non_root=True,
                        run_as_user=RUN_AS_ID,
                        run_as_group=RUN_AS_ID,
                        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                    ),
                    volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=SCRATCH_SIZE)
                )
            ],
        ),
    )

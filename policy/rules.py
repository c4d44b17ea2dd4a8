"""The policy pack's rules as plain functions over Kubernetes property dicts.

Each rule takes what Pulumi hands a policy (the resource's type token and its
camelCase properties) and returns violation messages; no message means
compliant. Nothing here needs the engine, so the tests call the rules directly
and ``policy/__main__.py`` only wires them into pulumi-policy.

Properties may be pulumi-policy's read-only proxies, so values are checked
against the ``collections.abc`` types, never ``dict`` or ``list``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from project import REVIEW_STACK

#: Stacks that may run a single replica: the developer's own and pull-request review stacks.
SINGLE_REPLICA_STACK = "dev"
#: Replicas every other stack must run, so one pod can be lost or replaced without downtime.
MIN_REPLICAS = 2
#: The label (key, value) of a canary's pods (components/labels.py: TRACK, CANARY_TRACK; the pack imports no
#: component, so it is spelt here, and a unit test holds the two equal).
CANARY_LABEL = ("track", "canary")

# Kinds whose pod template sits at spec.template; Pods and CronJobs are handled on their own.
_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"})
#: Kinds that serve traffic for as long as they run, so probes are required.
SERVING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"})
#: Kinds with ``spec.replicas``.
REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})

RESOURCE_KEYS = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))


@dataclass(frozen=True)
class StackResource:
    """One resource of a stack, as a stack policy sees it: type token, URN and properties."""

    type: str
    urn: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class StackViolation:
    """A violation found by a stack rule, and the URN of the resource at fault."""

    urn: str
    message: str


def kubernetes_kind(resource_type: str) -> str | None:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``; None for any other provider."""
    provider, _, rest = resource_type.partition(":")
    if provider != "kubernetes" or ":" not in rest:
        return None
    return rest.rsplit(":", 1)[1]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def pod_template(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod template (``metadata`` and ``spec``) of a workload, or None for anything else."""
    kind = kubernetes_kind(resource_type)
    spec = _mapping(props.get("spec"))
    if kind in _TEMPLATE_KINDS:
        return _mapping(spec.get("template"))
    if kind == "CronJob":
        return _mapping(_mapping(_mapping(spec.get("jobTemplate")).get("spec")).get("template"))
    if kind == "Pod":
        return props
    return None


def _pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    template = pod_template(resource_type, props)
    return None if template is None else _mapping(template.get("spec"))


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Init containers and containers: both run in the pod, so both must comply."""
    for key in ("initContainers", "containers"):
        for container in _items(pod_spec.get(key)):
            yield _mapping(container)


def _label(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name', '?')!r}"


def split_image(reference: str) -> tuple[str | None, str | None]:
    """The tag and the digest of an image reference; None for a part it does not have.

    ``registry:5000/app`` has no tag: a colon before the last slash is a port.
    """
    name, _, digest = reference.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else None
    return tag, digest or None


def image_tag_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every image names a version: a digest, or a tag that is neither empty nor ``latest``."""
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    found = []
    for container in _containers(pod_spec):
        image = container.get("image")
        if not isinstance(image, str) or not image.strip():
            found.append(f"{_label(container)} has no image")
            continue
        tag, digest = split_image(image)
        if digest:
            continue
        if not tag:
            found.append(f"{_label(container)} image {image!r} has no tag, so it means 'latest'")
        elif tag == "latest":
            found.append(f"{_label(container)} image {image!r} uses the 'latest' tag")
    return found


def resources_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every container sets CPU and memory requests and limits."""
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    found = []
    for container in _containers(pod_spec):
        resources = _mapping(container.get("resources"))
        missing = [f"{group}.{name}" for group, name in RESOURCE_KEYS if not _mapping(resources.get(group)).get(name)]
        if missing:
            found.append(f"{_label(container)} sets no resources {', '.join(missing)}")
    return found


def probes_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every container of a serving workload has a readiness and a liveness probe."""
    if kubernetes_kind(resource_type) not in SERVING_KINDS:
        return []
    pod_spec = _pod_spec(resource_type, props) or {}
    found = []
    # Init containers run to completion before the pod serves; probes do not apply to them.
    for container in _items(pod_spec.get("containers")):
        missing = [probe for probe in ("readinessProbe", "livenessProbe") if not _mapping(container).get(probe)]
        if missing:
            found.append(f"{_label(_mapping(container))} has no {' and no '.join(missing)}")
    return found


def run_as_non_root_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every container runs with ``runAsNonRoot: true``, its own or inherited from the pod."""
    pod_spec = _pod_spec(resource_type, props)
    if pod_spec is None:
        return []
    pod_level = _mapping(pod_spec.get("securityContext")).get("runAsNonRoot")
    found = []
    for container in _containers(pod_spec):
        own = _mapping(container.get("securityContext")).get("runAsNonRoot")
        # The container's setting, when present, overrides the pod's.
        if (own if own is not None else pod_level) is not True:
            found.append(f"{_label(container)} may run as root: runAsNonRoot is not true for it or its pod")
    return found


def min_replicas(stack: str) -> int:
    """Replicas a stack must run: 1 for ``dev`` and ``pr-<n>`` review stacks, 2 elsewhere."""
    if stack == SINGLE_REPLICA_STACK or REVIEW_STACK.match(stack):
        return 1
    return MIN_REPLICAS


def replicas_violations(resource_type: str, props: Mapping[str, Any], stack: str) -> list[str]:
    """A replicated workload outside ``dev`` and ``pr-*`` runs at least two replicas.

    Kubernetes defaults a missing ``spec.replicas`` to 1, so it counts as 1. A canary's pods
    (``CANARY_LABEL`` on its pod template) are exempt: they serve beside a stable workload, whose
    replicas this rule checks, and their count is a share of traffic (``canaryReplicas``).
    """
    if kubernetes_kind(resource_type) not in REPLICATED_KINDS:
        return []
    labels = _mapping(_mapping((pod_template(resource_type, props) or {}).get("metadata")).get("labels"))
    if labels.get(CANARY_LABEL[0]) == CANARY_LABEL[1]:
        return []
    required = min_replicas(stack)
    replicas = _mapping(props.get("spec")).get("replicas", 1)
    if not isinstance(replicas, int | float) or replicas < required:
        # The engine sends numbers as floats; show 1.0 as 1.
        shown = int(replicas) if isinstance(replicas, float) and replicas.is_integer() else replicas
        return [f"replicas is {shown!r}; stack {stack!r} must run at least {required}"]
    return []


def _namespace(props: Mapping[str, Any]) -> str:
    return str(_mapping(props.get("metadata")).get("namespace") or "")


def _selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def service_selector_violations(resources: Iterable[StackResource]) -> list[StackViolation]:
    """Every Service with a selector selects the pods of some workload in its namespace.

    A selector no pod template carries gives a Service without endpoints: the
    tutorial's bug, which Kubernetes accepts without a word.
    """
    resources = list(resources)
    pods: list[tuple[str, Mapping[str, Any]]] = []
    for resource in resources:
        template = pod_template(resource.type, resource.props)
        if template is not None:
            labels = _mapping(_mapping(template.get("metadata")).get("labels"))
            pods.append((_namespace(resource.props), labels))
    found = []
    for resource in resources:
        if kubernetes_kind(resource.type) != "Service":
            continue
        selector = _mapping(_mapping(resource.props.get("spec")).get("selector"))
        if not selector:
            # No selector: endpoints are managed by hand (or it is an ExternalName); nothing to match.
            continue
        namespace = _namespace(resource.props)
        if not any(ns == namespace and _selects(selector, labels) for ns, labels in pods):
            wanted = ", ".join(f"{key}={value}" for key, value in sorted(selector.items()))
            found.append(
                StackViolation(resource.urn, f"Service selector {{{wanted}}} matches no pod template in {namespace!r}")
            )
    return found

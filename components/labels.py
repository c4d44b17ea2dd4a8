"""The one source of Kubernetes labels for k8s-demo.

The tutorial tied its Service to its pods with a hand-written ``app: k8s`` in
three files and then broke it by relabelling the pods. Here the Deployment
selector, the pod template and the Service selector all come from
``selector_labels``; nothing else may write those keys.
"""

from __future__ import annotations

from components.values import LABEL_VALUE
from project import NAME as PROJECT_NAME

#: ``app.kubernetes.io/name`` of every object: the project's name.
APP_NAME = PROJECT_NAME

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"


def selector_labels(instance: str) -> dict[str, str]:
    """The labels that select this instance's pods: name and instance only.

    They never change during the life of a Deployment (its selector is
    immutable), so the version is deliberately not among them.
    """
    return {NAME: APP_NAME, INSTANCE: instance}


def object_labels(instance: str) -> dict[str, str]:
    """Selector labels plus the descriptive ones, for every object.

    No version here: a release must change only the Deployment, not the
    namespace, Service or NetworkPolicy around it.
    """
    return {**selector_labels(instance), MANAGED_BY: "pulumi", COMPONENT: "web"}


def workload_labels(instance: str, version: str) -> dict[str, str]:
    """Object labels plus the version, for the Deployment and its pod template.

    The version label is left out when the tag is not a valid label value
    (tags may be 128 characters long; label values only 63).
    """
    labels = object_labels(instance)
    if LABEL_VALUE.match(version):
        labels[VERSION] = version
    return labels


#: Tells a canary's pods from the stable ones. Only canary pods carry it: giving the stable pods a track label of
#: their own would change the stable Deployment's pod template, and so roll every stable pod, as a canary starts.
TRACK = "track"
CANARY_TRACK = "canary"


def canary_selector_labels(instance: str) -> dict[str, str]:
    """The canary Deployment's selector: the Service's selector labels plus the canary track.

    Its pods also match the Service's selector (name and instance), so they take
    their share of its traffic by pod count.
    """
    return {**selector_labels(instance), TRACK: CANARY_TRACK}


def canary_labels(instance: str, version: str) -> dict[str, str]:
    """Workload labels of the canary's version, plus the canary track: the canary Deployment and its pods."""
    return {**workload_labels(instance, version), TRACK: CANARY_TRACK}


def label_selector(labels: dict[str, str], *, without: tuple[str, ...] = ()) -> str:
    """A label selector string for the API (``a=b,c=d``), requiring the keys in ``without`` to be absent (``!key``)."""
    return ",".join([*(f"{key}={value}" for key, value in labels.items()), *(f"!{key}" for key in without)])


def stable_pods_selector(instance: str) -> str:
    """The stable pods of an instance: the Service's selector labels, and no track label."""
    return label_selector(selector_labels(instance), without=(TRACK,))


def canary_pods_selector(instance: str) -> str:
    """The canary pods of an instance."""
    return label_selector(canary_selector_labels(instance))

"""The cluster as its API shows it, read with the official ``kubernetes`` client: never through ``kubectl``.

One write is here too: scaling a Deployment (``Cluster.scale``), with which a canary release stops a failed canary
at once.

It reaches the cluster the stack's Kubernetes provider reaches:

- the kubeconfig: ``kubernetes:kubeconfig`` in the stack's config (a path, or
  the file's content), else ``KUBECONFIG`` (files joined by ``:``, merged as
  kubectl merges them), else ``~/.kube/config``;
- the context: ``kubernetes:context``, else the kubeconfig's current context.

Reads return the API's own JSON (``camelCase`` keys, as ``kubectl get -o json``
prints it), so what classifies them can be tested over objects recorded from a
real cluster. A read the cluster refuses raises ``Refused``, which names the
verb, the resource and the namespace: the caller says which permission is
missing and goes on without it.

The client is imported on first use, not with this module: it costs about
0.45 s, which an update that needs no cluster read must not pay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

#: The stack config keys of the Kubernetes provider that say which cluster it uses.
KUBECONFIG_KEY = "kubernetes:kubeconfig"
CONTEXT_KEY = "kubernetes:context"

#: Seconds one API request may take (connect, read), so that a hung API server cannot hold an update.
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class Target:
    """Which cluster, and where in it.

    ``kubeconfig``: a path or a kubeconfig's content, as ``kubernetes:kubeconfig`` takes it; None reads
    ``KUBECONFIG`` or ``~/.kube/config``. ``context``: None is the kubeconfig's current context.
    """

    namespace: str
    kubeconfig: str | None = None
    context: str | None = None

    @classmethod
    def of_stack(cls, config: Mapping[str, str], namespace: str) -> Target:
        """The cluster of a stack whose config (full keys, as ``engine.config`` gives them) is ``config``."""
        return cls(
            namespace=namespace,
            kubeconfig=config.get(KUBECONFIG_KEY) or None,
            context=config.get(CONTEXT_KEY) or None,
        )


class Refused(Exception):
    """The cluster refused a read: who may not do what, where, and Kubernetes' own message."""

    def __init__(self, *, verb: str, resource: str, namespace: str, status: int, message: str) -> None:
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.status = status
        self.message = message
        super().__init__(
            f"the cluster refused {verb} on {resource} in namespace {namespace} (HTTP {status}): {message}"
        )

    @property
    def permission(self) -> str:
        """The RBAC rule it needs, e.g. ``list pods``, ``get pods/log``."""
        return f"{self.verb} {self.resource}"


def _api_client(target: Target) -> ApiClient:
    from kubernetes import config  # noqa: PLC0415  # see the module's docstring: only when a read is made

    text = target.kubeconfig
    if text is not None and "\n" in text.strip():
        # The provider takes the file's content as well as its path.
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"{KUBECONFIG_KEY} is neither a kubeconfig file's path nor a kubeconfig's content")
        client = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            loaded, context=target.context, persist_config=False
        )
        return cast("ApiClient", client)
    path = str(Path(text).expanduser()) if text is not None else None
    client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=path, context=target.context, persist_config=False
    )
    return cast("ApiClient", client)


def _message(body: object) -> str:
    """Kubernetes' ``Status.message`` from an error's body, else the body itself."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        status = json.loads(text)
    except ValueError:
        return text.strip()
    return str(status.get("message", text)).strip() if isinstance(status, dict) else text.strip()


class Cluster:
    """Reads in one namespace of one cluster. Open with ``Cluster.connect(target)``."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        from kubernetes.client import AppsV1Api, CoreV1Api  # noqa: PLC0415

        self._client = client
        self._core: CoreV1Api = CoreV1Api(client)
        self._apps: AppsV1Api = AppsV1Api(client)
        self.namespace = namespace

    @classmethod
    def connect(cls, target: Target) -> Cluster:
        """A client for ``target``; raises ``ValueError`` or the client's ``ConfigException`` on a bad kubeconfig."""
        return cls(_api_client(target), target.namespace)

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self, verb: str, resource: str, call: Callable[..., object], *args: str, **options: object) -> bytes:
        """The body of one request, unparsed; 401 and 403 raise ``Refused``."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            response = call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **options)
        except ApiException as error:
            if error.status in (401, 403):
                raise Refused(
                    verb=verb,
                    resource=resource,
                    namespace=self.namespace,
                    status=error.status,
                    message=_message(error.body),
                ) from error
            raise
        # Unparsed (``_preload_content=False``): the API's JSON as sent, not the client's models.
        return bytes(getattr(response, "data", b""))

    def _list(self, resource: str, call: Callable[..., object], **options: object) -> list[dict[str, Any]]:
        document = json.loads(self._read("list", resource, call, self.namespace, **options))
        return list(document.get("items") or [])

    def pods(self, selector: str) -> list[dict[str, Any]]:
        """The namespace's pods that match a label selector (``app.kubernetes.io/name=x,...``)."""
        return self._list("pods", self._core.list_namespaced_pod, label_selector=selector)

    def events(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        """The namespace's events (core/v1), optionally of one object: ``involvedObject.name=<pod>``."""
        return self._list("events", self._core.list_namespaced_event, field_selector=field_selector)

    def replica_sets(self, selector: str) -> list[dict[str, Any]]:
        """The namespace's ReplicaSets that match a label selector."""
        return self._list("replicasets", self._apps.list_namespaced_replica_set, label_selector=selector)

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The Deployment ``name`` (``get deployments``), or None when there is none."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            body = self._read("get", "deployments", self._apps.read_namespaced_deployment, name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        document = json.loads(body)
        return document if isinstance(document, dict) else None

    def log(
        self,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = 20,
        previous: bool = False,
        since_seconds: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """The last ``tail_lines`` lines a container wrote (``previous``: its last terminated run), as written.

        ``tail_lines`` None: every line; ``since_seconds``: only those written in the last so many seconds;
        ``timestamps``: each line starts with the time the runtime received it (RFC 3339, nanoseconds) and a space.
        """
        options: dict[str, object] = {"container": container, "previous": previous}
        if timestamps:
            options["timestamps"] = True
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        if since_seconds is not None:
            options["since_seconds"] = since_seconds
        data = self._read("get", "pods/log", self._core.read_namespaced_pod_log, pod, self.namespace, **options)
        return data.decode("utf-8", "replace")

    def scale(self, deployment: str, replicas: int) -> None:
        """Set a Deployment's replicas through its scale subresource (``patch deployments/scale``).

        The one write here: a canary release stops a canary that failed at once, before the update that deletes it.
        """
        self._read(
            "patch",
            "deployments/scale",
            self._apps.patch_namespaced_deployment_scale,
            deployment,
            self.namespace,
            body={"spec": {"replicas": replicas}},
        )

    def proxy_get(self, pod: str, port: int, path: str) -> int:
        """``GET <path>`` to ``port`` of ``pod`` through the API server's pod proxy; the HTTP status it answered.

        The request reaches the pod from the API server, so it works from outside the cluster network (a CI
        runner). A status the pod answers (404, 500) is returned, not raised; 401 and 403 of the API server raise
        ``Refused``; a pod the proxy cannot reach is the proxy's status (502, 503).
        """
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            self._read(
                "get",
                "pods/proxy",
                self._core.connect_get_namespaced_pod_proxy_with_path,
                f"{pod}:{port}",
                self.namespace,
                path.lstrip("/"),
            )
        except ApiException as error:
            # 401 and 403 of the API server itself are Refused already; any other status is the pod's answer,
            # or the proxy's 502/503 for a pod it cannot reach: a failed request either way.
            if error.status is None:
                raise
            return int(error.status)
        return 200

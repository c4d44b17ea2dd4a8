"""ops.cluster against a stand-in API server on 127.0.0.1: the real client, its requests and the refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import yaml

from ops.cluster import Cluster, Refused, Target

POD = {"metadata": {"name": "web-1", "namespace": "ns"}, "status": {"phase": "Running"}}


class _Api(BaseHTTPRequestHandler):
    #: path prefix -> (status, body); the first match answers.
    answers: ClassVar[dict[str, tuple[int, object]]] = {}
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.seen.append((parts.path, dict(parse_qsl(parts.query))))
        for prefix, (status, body) in self.answers.items():
            if self.path.startswith(prefix):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
        self.send_error(404)

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.answers, _Api.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _kubeconfig(server: str, context: str = "sandbox") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": context, "context": {"cluster": "c", "user": "u"}},
            {"name": "elsewhere", "context": {"cluster": "c", "user": "u", "namespace": "x"}},
        ],
        "current-context": "elsewhere",
    }


def test_of_stack_takes_the_providers_keys() -> None:
    config = {"kubernetes:kubeconfig": "~/k.yaml", "kubernetes:context": "kind-a", "k8s-demo:replicas": "3"}
    assert Target.of_stack(config, "ns") == Target(namespace="ns", kubeconfig="~/k.yaml", context="kind-a")


def test_of_stack_without_the_keys_reads_kubeconfig_env_or_home() -> None:
    assert Target.of_stack({}, "ns") == Target(namespace="ns", kubeconfig=None, context=None)


def test_pods_come_back_as_the_apis_json(api: str, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(_kubeconfig(api)))
    _Api.answers = {"/api/v1/namespaces/ns/pods": (200, {"kind": "PodList", "items": [POD]})}
    with Cluster.connect(Target(namespace="ns", kubeconfig=str(path), context="sandbox")) as cluster:
        pods = cluster.pods("app.kubernetes.io/name=web")
    assert pods == [POD]
    assert _Api.seen == [("/api/v1/namespaces/ns/pods", {"labelSelector": "app.kubernetes.io/name=web"})]


def test_kubeconfig_content_works_as_well_as_a_path(api: str) -> None:
    _Api.answers = {"/api/v1/namespaces/ns/events": (200, {"kind": "EventList", "items": []})}
    content = yaml.safe_dump(_kubeconfig(api))
    with Cluster.connect(Target(namespace="ns", kubeconfig=content)) as cluster:
        assert cluster.events("involvedObject.name=web-1") == []
    assert _Api.seen == [("/api/v1/namespaces/ns/events", {"fieldSelector": "involvedObject.name=web-1"})]


def test_a_forbidden_read_names_the_permission_it_needs(api: str) -> None:
    status = {"kind": "Status", "message": 'pods "web-1" is forbidden: User "ci" cannot get resource "pods/log"'}
    _Api.answers = {"/api/v1/namespaces/ns/pods/web-1/log": (403, status)}
    content = yaml.safe_dump(_kubeconfig(api))
    with Cluster.connect(Target(namespace="ns", kubeconfig=content)) as cluster, pytest.raises(Refused) as refused:
        cluster.log("web-1", tail_lines=20, previous=True)
    assert refused.value.permission == "get pods/log"
    assert str(refused.value) == (
        "the cluster refused get on pods/log in namespace ns (HTTP 403): "
        'pods "web-1" is forbidden: User "ci" cannot get resource "pods/log"'
    )
    assert _Api.seen == [("/api/v1/namespaces/ns/pods/web-1/log", {"previous": "true", "tailLines": "20"})]


def test_log_returns_the_lines_as_the_container_wrote_them(api: str) -> None:
    _Api.answers = {"/api/v1/namespaces/ns/pods/web-1/log": (200, "nginx: [emerg] unknown directive\n")}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.log("web-1") == "nginx: [emerg] unknown directive\n"


def test_replica_sets_are_read_from_apps_v1(api: str) -> None:
    _Api.answers = {"/apis/apps/v1/namespaces/ns/replicasets": (200, {"items": [{"metadata": {"name": "rs"}}]})}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.replica_sets("a=b") == [{"metadata": {"name": "rs"}}]


def test_the_context_named_by_the_stack_is_used_not_the_current_one(api: str, tmp_path: Path) -> None:
    document = _kubeconfig(api)
    document["clusters"] = [*document["clusters"], {"name": "other", "cluster": {"server": "http://127.0.0.1:9"}}]  # type: ignore[misc]
    document["contexts"][1]["context"]["cluster"] = "other"  # type: ignore[index]
    _Api.answers = {"/api/v1/namespaces/ns/pods": (200, {"items": []})}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(document), context="sandbox")) as cluster:
        assert cluster.pods("a=b") == []


def test_log_of_a_window_asks_for_every_line_since_with_timestamps(api: str) -> None:
    _Api.answers = {"/api/v1/namespaces/ns/pods/web-1/log": (200, "")}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        cluster.log("web-1", tail_lines=None, since_seconds=30, timestamps=True)
    assert _Api.seen == [
        ("/api/v1/namespaces/ns/pods/web-1/log", {"previous": "false", "sinceSeconds": "30", "timestamps": "true"})
    ]


def test_proxy_get_goes_to_the_pods_port_through_the_api_server(api: str) -> None:
    # The client escapes the ':' of "<pod>:<port>"; the API server unescapes the path.
    _Api.answers = {"/api/v1/namespaces/ns/pods/web-1%3A8080/proxy/": (200, "<html>")}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.proxy_get("web-1", 8080, "/") == 200
    assert [unquote(path) for path, _ in _Api.seen] == ["/api/v1/namespaces/ns/pods/web-1:8080/proxy/"]


def test_proxy_get_returns_what_the_pod_answered(api: str) -> None:
    _Api.answers = {"/api/v1/namespaces/ns/pods/web-1%3A8080/proxy/": (404, "not found")}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.proxy_get("web-1", 8080, "/") == 404


def test_scale_patches_the_deployments_scale(api: str) -> None:
    _Api.answers = {"/apis/apps/v1/namespaces/ns/deployments/k8s-demo-canary/scale": (200, {"kind": "Scale"})}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        cluster.scale("k8s-demo-canary", 0)
    assert _Api.seen == [("/apis/apps/v1/namespaces/ns/deployments/k8s-demo-canary/scale", {})]


def test_deployment_is_read_by_name_from_apps_v1(api: str) -> None:
    body = {"kind": "Deployment", "metadata": {"name": "web", "generation": 4}}
    _Api.answers = {"/apis/apps/v1/namespaces/ns/deployments/web": (200, body)}
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.deployment("web") == body
    assert _Api.seen == [("/apis/apps/v1/namespaces/ns/deployments/web", {})]


def test_a_deployment_not_yet_created_is_none(api: str) -> None:
    with Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster:
        assert cluster.deployment("web") is None


def test_a_forbidden_deployment_read_names_get_deployments(api: str) -> None:
    _Api.answers = {"/apis/apps/v1/namespaces/ns/deployments/web": (403, {"kind": "Status", "message": "no"})}
    with (
        Cluster.connect(Target(namespace="ns", kubeconfig=yaml.safe_dump(_kubeconfig(api)))) as cluster,
        pytest.raises(Refused) as refused,
    ):
        cluster.deployment("web")
    assert refused.value.permission == "get deployments"

"""``ops.render``: the manifests each stack would apply, as files the offline checks read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.offline import MockResource, ProgramRun
from ops.render import file_name, kubernetes_objects, main, manifest, plain, render_stack
from project import DEPLOYMENT_TYPE, NAMESPACE_TYPE
from tests.examples import example_config

#: The stacks the checks render: both example stacks and a review stack without a stack file.
STACKS = ("dev", "prod", "pr-42")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every example stack rendered once, through the same path ``make render`` takes."""
    out = tmp_path_factory.mktemp("manifests")
    for stack in STACKS:
        render_stack(stack, out, example_config(stack))
    return out


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _one(rendered: Path, stack: str, kind: str) -> dict[str, Any]:
    (path,) = rendered.glob(f"{stack}/*-{kind}-*.yaml")
    return _load(path)


def test_dev_files_are_numbered_in_apply_order_and_named_by_kind_and_name(rendered: Path) -> None:
    assert sorted(path.name for path in (rendered / "dev").iterdir()) == [
        "01-namespace-k8s-demo-dev.yaml",
        "02-networkpolicy-k8s-demo-allow-http.yaml",
        "03-service-k8s-demo-svc.yaml",
        "04-deployment-k8s-demo-deployment.yaml",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_one_file_per_kubernetes_resource(rendered: Path, stack_runs: dict[str, ProgramRun], stack: str) -> None:
    kubernetes = [r for r in stack_runs[stack].resources if r.type.startswith("kubernetes:")]
    assert len(list((rendered / stack).glob("*.yaml"))) == len(kubernetes)


@pytest.mark.parametrize("stack", STACKS)
def test_only_kubernetes_kinds_are_rendered(rendered: Path, stack: str) -> None:
    kinds = {_load(path)["kind"] for path in (rendered / stack).glob("*.yaml")}
    assert kinds == {"Namespace", "NetworkPolicy", "Service", "Deployment"}


def test_review_stack_without_stack_file_renders_its_own_namespace(rendered: Path) -> None:
    assert _one(rendered, "pr-42", "namespace")["metadata"]["name"] == "k8s-demo-pr-42"


def test_objects_live_in_the_stack_namespace(rendered: Path) -> None:
    namespaces = {_load(path)["metadata"].get("namespace") for path in (rendered / "prod").glob("0[2-9]-*.yaml")}
    assert namespaces == {"k8s-demo-prod"}


def test_replicas_is_an_integer_not_a_float(rendered: Path) -> None:
    replicas = _one(rendered, "dev", "deployment")["spec"]["replicas"]
    assert type(replicas) is int
    assert replicas == 10


def test_container_port_is_an_integer(rendered: Path) -> None:
    container = _one(rendered, "dev", "deployment")["spec"]["template"]["spec"]["containers"][0]
    assert type(container["ports"][0]["containerPort"]) is int


def test_configured_node_port_is_an_integer(rendered: Path) -> None:
    port = _one(rendered, "prod", "service")["spec"]["ports"][0]
    assert type(port["nodePort"]) is int
    assert port["nodePort"] == 30080


def test_percentage_stays_a_string(rendered: Path) -> None:
    assert _one(rendered, "prod", "deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"


def test_deployment_runs_the_stack_image(rendered: Path) -> None:
    container = _one(rendered, "dev", "deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "k8s-demo:0.2"


def test_manifest_starts_with_api_version_kind_metadata(rendered: Path) -> None:
    assert list(_one(rendered, "dev", "namespace"))[:3] == ["apiVersion", "kind", "metadata"]


def test_file_round_trips_to_the_manifest(rendered: Path, dev: ProgramRun) -> None:
    assert _one(rendered, "dev", "deployment") == manifest(dev.one(DEPLOYMENT_TYPE))


def test_stale_manifest_is_removed(tmp_path: Path) -> None:
    stale = tmp_path / "dev" / "09-configmap-gone.yaml"
    stale.parent.mkdir()
    stale.write_text("kind: ConfigMap\n", encoding="utf-8")
    render_stack("dev", tmp_path)
    assert not stale.exists()


def test_apply_order_does_not_depend_on_registration_order(dev: ProgramRun) -> None:
    forward = kubernetes_objects(dev.resources)
    assert kubernetes_objects(list(reversed(dev.resources))) == forward


def test_plain_turns_integral_floats_into_ints() -> None:
    converted = plain({"a": 10.0, "b": [1.0, {"c": 2.0}]})
    assert converted == {"a": 10, "b": [1, {"c": 2}]}
    assert isinstance(converted, dict)
    assert type(converted["a"]) is int


def test_plain_keeps_fractions_and_booleans() -> None:
    assert plain([0.5, True, "8080"]) == [0.5, True, "8080"]


def test_plain_sorts_mapping_keys() -> None:
    converted = plain({"b": 1, "a": 2})
    assert isinstance(converted, dict)
    assert list(converted) == ["a", "b"]


def test_object_without_name_is_refused() -> None:
    unnamed = MockResource(NAMESPACE_TYPE, "ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}, {})
    with pytest.raises(ValueError, match=r"no metadata\.name"):
        manifest(unnamed)


def test_file_name_lowercases_the_kind() -> None:
    assert file_name(3, {"kind": "NetworkPolicy", "metadata": {"name": "x"}}) == "03-networkpolicy-x.yaml"


def test_cli_renders_every_requested_stack(tmp_path: Path) -> None:
    assert main(["--stack", "dev", "--stack", "pr-42", "--out", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev", "pr-42"]

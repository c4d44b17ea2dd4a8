# mypy: disallow-untyped-decorators=False
# (pulumi.runtime.test is untyped; it is used here exactly as Pulumi documents it.)
"""The offline renderer: runs the whole program (``__main__.py``) under Pulumi's mocks, with no engine or cluster.

``make render`` (``ops.render``), the unit tests and the benchmarks share this
one mock engine. Mocked resources echo their inputs as outputs, plus what a
cluster or Docker would fill in: an assigned node port, a pushed image's
digest, the engine's platform. The program gets its stack config as the language host gives it under
``pulumi up``: the whole map, as JSON, in ``PULUMI_CONFIG``.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.settings import set_root_resource

from components.docker_engine import simulated_engine
from project import IMAGE_TYPE, NAME, ROOT, SERVICE_TYPE

MAIN = ROOT / "__main__.py"

#: What the mocked cluster assigns when no node port is configured (the tutorial's 80:31404).
MOCKED_NODE_PORT = 31404
#: What the mocked Docker engine says its platform is (the program builds for it unless buildPlatform is set).
MOCKED_ENGINE_PLATFORM = "linux/amd64"
#: Where the language host puts a program's stack config (JSON of full keys to strings),
#: and where the SDK's ``pulumi.Config`` and ``pulumi.runtime.get_config_env()`` read it.
CONFIG_ENV = "PULUMI_CONFIG"


@contextmanager
def stack_config(config: Mapping[str, str]) -> Iterator[None]:
    """Hand ``config`` (full keys) to programs run inside, as the language host does; put things back after.

    The program then reads config the one way it does under ``pulumi up``, and
    lists its keys (to refuse a misspelt one) as it does there.
    """
    saved = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = json.dumps(dict(config))
    # Values set in-process would shadow the environment's for pulumi.Config: none are.
    pulumi.runtime.set_all_config({})
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = saved


@dataclass(frozen=True)
class MockResource:
    """One registered resource: its type token, logical name, inputs and mocked outputs."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class ClusterMocks(pulumi.runtime.Mocks):
    """Records every resource; simulates what the cluster and Docker would add.

    ``assign_node_ports=False`` plays the preview of a new Service, whose node port is not assigned yet.
    """

    resources: list[MockResource] = field(default_factory=list)
    assign_node_ports: bool = True

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == SERVICE_TYPE and self.assign_node_ports:
            outputs["spec"] = _with_assigned_node_ports(outputs.get("spec", {}))
        elif args.typ == IMAGE_TYPE:
            outputs.update(_built_image(outputs))
        self.resources.append(MockResource(args.typ, args.name, dict(args.inputs), outputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _with_assigned_node_ports(spec: dict[str, Any]) -> dict[str, Any]:
    ports = [{**port, "nodePort": port.get("nodePort", MOCKED_NODE_PORT)} for port in spec.get("ports", [])]
    return {**spec, "ports": ports}


def _built_image(inputs: dict[str, Any]) -> dict[str, Any]:
    name = str(inputs["imageName"])
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    pushed = not inputs.get("skipPush", False)
    # Pushed: a registry manifest digest; local: the image ID (pulumi-docker's documented forms).
    return {"repoDigest": f"{repository}@{digest}" if pushed else digest}


@dataclass(frozen=True)
class ProgramRun:
    """Everything one run of the program registered and exported."""

    resources: list[MockResource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[MockResource]:
        """Resources with this type token, in registration order."""
        return [resource for resource in self.resources if resource.type == type_token]

    def one(self, type_token: str) -> MockResource:
        """The single resource of this type; fails when there are none or several."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token}, found {len(found)}")
        return found[0]


def run_program(
    stack: str, config: dict[str, str], *, preview: bool = False, mocks: ClusterMocks | None = None
) -> ProgramRun:
    """Run ``__main__.py`` for ``stack`` with ``config`` (full keys) and return what it did.

    Raises whatever the program raises, e.g. the ``pulumi.RunError`` of bad config;
    pass ``mocks`` to see what was registered before that.
    """
    # Each run gets a fresh root stack, so exports never leak between runs.
    set_root_resource(None)  # type: ignore[arg-type]
    mocks = mocks if mocks is not None else ClusterMocks()
    pulumi.runtime.set_mocks(mocks, project=NAME, stack=stack, preview=preview)
    root = pulumi.runtime.get_root_resource()
    exported: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        runpy.run_path(str(MAIN), run_name="__main__")
        outputs: dict[str, Any] = getattr(root, "outputs", {})
        return pulumi.Output.all(**outputs).apply(exported.update)

    with stack_config(config), simulated_engine(MOCKED_ENGINE_PLATFORM):
        program()
    return ProgramRun(resources=list(mocks.resources), outputs=exported)

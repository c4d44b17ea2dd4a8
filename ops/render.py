"""Render the Kubernetes manifests a stack would apply, one YAML file per object.

Runs the program under the one mock engine (``ops.offline``) and writes
the inputs of every ``kubernetes:*`` resource to
``<out>/<stack>/NN-<kind>-<name>.yaml``, numbered in apply order. Schema validation, checkov and the
policy tests read these files, so no check needs a cluster.

Usage: ``python -m ops.render --stack dev [--stack prod ...] [--out build/manifests]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml

from ops.offline import MockResource, run_program
from project import ROOT, stack_file_config

#: Where ``make render`` writes, one directory per stack.
DEFAULT_OUT = ROOT / "build" / "manifests"

#: Type-token prefix of the objects Pulumi sends to the cluster (not components, not the image).
KUBERNETES_PREFIX = "kubernetes:"

# Conventional order of a manifest's top-level keys; everything below them is sorted.
_TOP_LEVEL = ("apiVersion", "kind", "metadata")

#: Apply order by kind (as ``kubectl apply -f <dir>`` would read the files): the namespace
#: first, the NetworkPolicy before any pod exists, the pods last. Registration order
#: under Pulumi is not stable from run to run, so it cannot number the files.
KIND_ORDER = ("Namespace", "NetworkPolicy", "Service", "Deployment")


def plain(value: object) -> object:
    """``value`` with integral floats as ints and mappings sorted by key.

    The mock engine hands numbers back as protobuf doubles (``10.0``); the
    Kubernetes API wants integers there, and a schema validator rejects ``10.0``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(key): plain(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def manifest(resource: MockResource) -> dict[str, Any]:
    """The object as it would be sent to the API server: the resource's inputs, cleaned."""
    body = plain(resource.inputs)
    assert isinstance(body, dict)  # plain() keeps a mapping a mapping
    for key in ("apiVersion", "kind"):
        if not isinstance(body.get(key), str):
            raise ValueError(f"{resource.type} {resource.name!r} has no {key}")
    name = (body.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        # Pulumi would auto-name it with a random suffix: there is no stable manifest to write.
        raise ValueError(f"{resource.type} {resource.name!r} has no metadata.name")
    ordered = {key: body[key] for key in _TOP_LEVEL}
    ordered.update({key: body[key] for key in body if key not in _TOP_LEVEL})
    return ordered


def _apply_rank(obj: Mapping[str, Any]) -> tuple[int, str, str]:
    kind = str(obj["kind"])
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, kind, str(obj["metadata"]["name"])


def kubernetes_objects(resources: Iterable[MockResource]) -> list[dict[str, Any]]:
    """Manifests of the ``kubernetes:*`` resources, in apply order (kind, then name)."""
    objects = [manifest(resource) for resource in resources if resource.type.startswith(KUBERNETES_PREFIX)]
    return sorted(objects, key=_apply_rank)


def file_name(index: int, obj: Mapping[str, Any]) -> str:
    """``01-namespace-k8s-demo-dev.yaml``: numbered so a directory listing is apply order."""
    return f"{index:02d}-{str(obj['kind']).lower()}-{obj['metadata']['name']}.yaml"


def render_stack(stack: str, out: Path, config: Mapping[str, str] | None = None) -> list[Path]:
    """Run the program for ``stack`` and write its manifests to ``out/<stack>/``; return the files.

    ``config``: the stack's config under full keys; None reads its stack file over the project's defaults.
    """
    values = dict(config) if config is not None else stack_file_config(stack)
    objects = kubernetes_objects(run_program(stack, values).resources)
    directory = out / stack
    directory.mkdir(parents=True, exist_ok=True)
    # An object the program no longer creates must not survive as a stale file.
    for stale in directory.glob("*.yaml"):
        stale.unlink()
    written = []
    for index, obj in enumerate(objects, start=1):
        path = directory / file_name(index, obj)
        path.write_text(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=4096), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ops.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", action="append", required=True, help="stack to render; repeat for several")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default: build/manifests)")
    args = parser.parse_args(argv)
    for stack in args.stack:
        try:
            written = render_stack(stack, args.out)
        except pulumi.RunError as error:
            print(f"render {stack}: {error}", file=sys.stderr)
            return 1
        print(f"{stack}: {len(written)} manifests in {args.out / stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

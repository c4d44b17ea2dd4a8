"""k8s-demo policy pack: wires the plain rules of ``policy.rules`` into pulumi-policy.

Pulumi runs this file with only ``policy/`` on ``sys.path``. The rules are still
imported as ``policy.rules``, the name the tests and mypy use: ``make venv``
installs the project (editable) into ``.venv``, where PulumiPolicy.yaml runs the pack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy import rules

PACK_NAME = "k8s-demo"

ResourceRule = Callable[[str, Mapping[str, Any]], list[str]]


def current_stack() -> str:
    """The stack being deployed.

    The engine gives every policy pack ``PULUMI_STACK`` (pulumi-policy itself
    configures ``pulumi.get_stack()`` from it before each validation); the SDK
    setting is the fallback. An unknown stack gets the strictest rules.
    """
    return os.environ.get("PULUMI_STACK") or pulumi.get_stack() or ""


def _resource_policy(name: str, description: str, rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


def _replicas(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    # Read at validation time: the stack is only known once the engine runs the pack.
    return rules.replicas_violations(resource_type, props, current_stack())


def _service_selector(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [rules.StackResource(r.resource_type, r.urn, r.props) for r in args.resources]
    for violation in rules.service_selector_violations(resources):
        report_violation(violation.message, violation.urn)


POLICIES: list[Policy] = [
    _resource_policy(
        "image-tag-names-a-version",
        "Container images are pinned by digest or by a tag other than 'latest'.",
        rules.image_tag_violations,
    ),
    _resource_policy(
        "cpu-and-memory-requests-and-limits",
        "Every container sets CPU and memory requests and limits.",
        rules.resources_violations,
    ),
    _resource_policy(
        "readiness-and-liveness-probes",
        "Every container of a serving workload has readiness and liveness probes.",
        rules.probes_violations,
    ),
    _resource_policy(
        "run-as-non-root",
        "Every container runs with runAsNonRoot, set on the container or the pod.",
        rules.run_as_non_root_violations,
    ),
    _resource_policy(
        "replicas-outside-dev",
        f"Workloads run at least {rules.MIN_REPLICAS} replicas outside the dev and pr-<n> stacks.",
        _replicas,
    ),
    StackValidationPolicy(
        name="service-selects-pods",
        description="Every Service selector matches the pod labels of a workload in its namespace.",
        validate=_service_selector,
    ),
]


if __name__ == "__main__":
    # Starts the analyzer's gRPC server and serves until the engine stops it.
    PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)

"""The preview as a reviewer reads it, from the engine's report of ``pulumi preview --refresh``.

``Preview`` adds to ``ops.engine.Report`` what the comment needs: the step the
update plans for each resource, the Deployment's, drift, the policy result, and
the stack's settings validated as the program validates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.settings import Settings, StackConfig, load_settings
from ops.engine import Diagnostic, PolicyViolation, Report, Step
from ops.preview.diff import Drift, drift, plan_steps
from project import DEPLOYMENT_TYPE, NAME, project_defaults

#: How Pulumi serialises a value that is only known after the update (e.g. a digest not pushed yet).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def kind_of(step: Step) -> str:
    """``Deployment`` for ``kubernetes:apps/v1:Deployment``; the type token for anything else."""
    return step.type.split(":")[-1] if step.type.startswith("kubernetes:") else step.type


def name_of(step: Step) -> str:
    """The Kubernetes object's name (``metadata.name``), else the logical name from the URN."""
    for side in ("new", "old"):
        metadata: Mapping[str, Any] = step.inputs(side).get("metadata") or {}
        if isinstance(metadata.get("name"), str) and metadata["name"] != UNKNOWN:
            return str(metadata["name"])
    return step.urn.split("::")[-1]


def _type_of_urn(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>
    return urn.split("::")[-2].rsplit("$", maxsplit=1)[-1]


def resource_label(urn: str) -> str:
    """``Deployment k8s-demo-deployment`` for a resource known only by its URN (its logical name, then)."""
    step = Step(op="", urn=urn, type=_type_of_urn(urn))
    return f"{kind_of(step)} {name_of(step)}"


@dataclass(frozen=True)
class PolicyResult:
    """Whether a policy pack ran, and its violations."""

    packs: tuple[str, ...] = ()
    violations: tuple[PolicyViolation, ...] = ()


@dataclass(frozen=True)
class Preview:
    """One preview's report, read for the comment."""

    report: Report

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.report.steps

    @property
    def config(self) -> Mapping[str, str]:
        """The stack's config as the engine had it."""
        return self.report.config

    @property
    def errors(self) -> list[Diagnostic]:
        """The error diagnostics: a preview with any of them failed."""
        return self.report.errors

    @property
    def failed(self) -> bool:
        return self.report.failed

    @property
    def policy(self) -> PolicyResult:
        return PolicyResult(packs=self.report.policy_packs, violations=self.report.policy_violations)

    def plan_steps(self) -> list[Step]:
        """The last step of each resource: what this update would do to it."""
        return plan_steps(self.steps)

    def drift(self) -> list[Drift]:
        """What the refresh found changed since the last update, per resource."""
        return drift(self.steps)

    def deployment(self) -> Step | None:
        """The plan step of the Deployment, if the program has one."""
        return next((step for step in self.plan_steps() if step.type == DEPLOYMENT_TYPE), None)


def settings_for(preview: Preview, stack: str, app_version: str) -> Settings:
    """The stack's settings, validated exactly as the program validates them.

    The preview's ``config`` is the stack's config as the engine had it; Pulumi.yaml's
    defaults go underneath, as the CLI merges them. Raises the program's ``pulumi.RunError``.
    """
    values = {**project_defaults(), **preview.config}
    return load_settings(StackConfig(NAME, values), project=NAME, stack=stack, app_version=app_version)

"""Comparing resource states: their leaves by path, what differs, and what a refresh found drifted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ops.engine import State, Step
from project import STACK_TYPE

#: The type tokens of providers: ``pulumi:providers:<package>``.
PROVIDER_TYPE_PREFIX = "pulumi:providers:"


class _Missing:
    """The value of a path on the side of a change where it does not exist."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    """Leaves of a nested value by property path (``spec.template.spec.containers[0].image``).

    An empty mapping or list is a leaf of its own, except at the top: no state has no leaves.
    """
    if not prefix and value in ({}, [], None):
        return {}
    if isinstance(value, Mapping) and value:
        leaves: dict[str, object] = {}
        for key in sorted(value):
            # Keys that are not plain words (annotations, labels) are quoted, as Pulumi writes paths.
            part = f".{key}" if str(key).replace("_", "").isalnum() else f'["{key}"]'
            leaves.update(flatten(value[key], f"{prefix}{part}" if prefix else part.lstrip(".")))
        return leaves
    if isinstance(value, list) and value:
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(flatten(item, f"{prefix}[{index}]"))
        return leaves
    return {prefix: value}


@dataclass(frozen=True)
class Change:
    """One leaf that differs between two states; ``MISSING`` on a side where it does not exist."""

    path: str
    old: object
    new: object


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every leaf that differs between ``old`` and ``new``, by path."""
    before, after = flatten(old), flatten(new)
    paths = sorted(set(before) | set(after))
    return [
        Change(path, before.get(path, MISSING), after.get(path, MISSING))
        for path in paths
        if before.get(path, MISSING) != after.get(path, MISSING)
    ]


def input_changes(step: Step) -> list[Change]:
    """What the step changes in the resource's inputs: what the program asks for, old against new."""
    return diff_values(step.inputs("old"), step.inputs("new"))


def state_changes(old: State | None, new: State | None) -> list[Change]:
    """What differs between two states of one resource, in the fields the program sets.

    Inputs are compared, and outputs too on the paths of the inputs: a refresh reads the
    live object into the outputs (and this provider into the inputs as well), while
    status, resourceVersion and annotations that controllers add are not the program's.
    """
    old_inputs = old.inputs if old is not None else {}
    new_inputs = new.inputs if new is not None else {}
    managed = set(flatten(old_inputs)) | set(flatten(new_inputs))
    found = {change.path: change for change in diff_values(old_inputs, new_inputs)}
    old_outputs = old.outputs if old is not None else {}
    new_outputs = new.outputs if new is not None else {}
    for change in diff_values(old_outputs, new_outputs):
        if change.path in managed:
            found.setdefault(change.path, change)
    return [found[path] for path in sorted(found)]


@dataclass(frozen=True)
class Drift:
    """A resource whose live state differs from the last update: old is the last update, new the cluster.

    ``resource`` is the step the update plans for it (or its refresh step, when none follows).
    """

    resource: Step
    changes: list[Change]


def is_default_provider(step: Step) -> bool:
    """A provider the engine made itself (``default``, ``default_4_25_0``), not one the program declares."""
    return step.type.startswith(PROVIDER_TYPE_PREFIX) and step.urn.rsplit("::", 1)[-1].startswith("default")


def plan_steps(steps: Sequence[Step]) -> list[Step]:
    """The last step of each resource: what the update does to it.

    With a refresh first, a resource has an earlier step too, the refresh's own.
    The stack itself and the engine's default providers are left out, as the
    CLI's own display leaves them out: they are no resource of the program.
    """
    last: dict[str, Step] = {}
    for step in steps:
        last[step.urn] = step
    return [
        step
        for step in last.values()
        if step.op != "refresh" and step.type != STACK_TYPE and not is_default_provider(step)
    ]


def drift(steps: Sequence[Step]) -> list[Drift]:
    """What the refresh before the update found changed since the last update, per resource.

    A refresh step starts from the state of the last update; the resource's plan step
    that follows starts from the refreshed, live state. Without a plan step after it,
    the live state is what the refresh step aims at (or, once it finished, produced).
    """
    plan = {step.urn: step for step in plan_steps(steps)}
    refreshed: dict[str, Step] = {}
    for step in steps:
        if step.type != STACK_TYPE and (step.op == "refresh" or plan.get(step.urn, step) is not step):
            refreshed.setdefault(step.urn, step)
    found = []
    for urn, refresh in refreshed.items():
        follows = plan.get(urn)
        if follows is not None and follows.old is not None:
            live: State | None = follows.old
        else:
            live = refresh.result or refresh.new
        changes = state_changes(refresh.old, live)
        if changes:
            found.append(Drift(resource=follows or refresh, changes=changes))
    return found

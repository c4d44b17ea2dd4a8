"""Render a stack's ``pulumi preview --refresh --json`` as a pull-request comment reviewers can decide from.

Top to bottom: a hidden marker that identifies the comment (``<!-- k8s-demo-preview:<stack> -->``),
one summary line, the image (old -> new, built or an existing tag), the rollout plan from
the stack's validated settings, drift (what the refresh found changed in the cluster since
the last update), the policy pack's result, then the full diff in a collapsed section. The
comment stays under GitHub's 65,536-character limit by trimming the diff, never the rest.

Usage::

    python -m ops.pr_comment --stack dev --out build/pr-comment/dev.md [--policy-pack policy]
    python -m ops.pr_comment --stack dev --out comment.md --preview-json preview.json [--event-log events.jsonl]

Without ``--preview-json`` it runs ``pulumi preview --refresh --json --stack <stack>`` itself
(with ``--event-log``, since ``--json`` leaves policy results out). Exit status: 0 when the
preview succeeded, 2 when it failed (the comment says why), 1 when no comment could be written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.settings import Settings, StackConfig, load_settings
from project import DEPLOYMENT_TYPE, NAME, ROOT, STACK_TYPE, project_defaults, read_app_version

#: GitHub refuses a comment body longer than this many characters.
GITHUB_COMMENT_LIMIT = 65_536

#: How Pulumi serialises a value that is only known after the update (e.g. a digest not pushed yet).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

#: Lines of a failed preview's error shown in the comment, and characters of each at most.
ERROR_LINES = 20
ERROR_LINE_WIDTH = 500


# Step ops that change something, by the kind the summary counts them as.
_KIND_OF_OP = {
    "create": "create",
    "update": "update",
    "replace": "replace",
    "create-replacement": "replace",
    "delete": "delete",
}
_KINDS = ("create", "update", "replace", "delete")


def marker(stack: str) -> str:
    """The hidden first line that identifies this stack's comment on a pull request."""
    return f"<!-- k8s-demo-preview:{stack} -->"


# ---------------------------------------------------------------------------
# Reading the preview


@dataclass(frozen=True)
class Step:
    """One step of the preview: what happens to one resource."""

    op: str
    urn: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None
    detailed_diff: Mapping[str, Any]

    @property
    def type(self) -> str:
        """The resource's type token: its state's, else the URN's (``urn:pulumi:stack::project::parent$type::name``)."""
        for state in (self.new, self.old):
            if state and isinstance(state.get("type"), str):
                return str(state["type"])
        return self.urn.split("::")[-2].split("$")[-1]

    @property
    def name(self) -> str:
        """The Kubernetes object's name (``metadata.name``), else the logical name from the URN."""
        for side in ("new", "old"):
            metadata = self.inputs(side).get("metadata") or {}
            if isinstance(metadata.get("name"), str) and metadata["name"] != UNKNOWN:
                return str(metadata["name"])
        return self.urn.split("::")[-1]

    @property
    def kind(self) -> str:
        """``Deployment`` for ``kubernetes:apps/v1:Deployment``; the type token for anything else."""
        return self.type.split(":")[-1] if self.type.startswith("kubernetes:") else self.type

    def inputs(self, side: str) -> Mapping[str, Any]:
        """The ``old`` or ``new`` state's inputs (empty when that side does not exist)."""
        state = self.old if side == "old" else self.new
        return (state or {}).get("inputs") or {}

    def outputs(self, side: str) -> Mapping[str, Any]:
        """The ``old`` or ``new`` state's outputs (empty when that side does not exist)."""
        state = self.old if side == "old" else self.new
        return (state or {}).get("outputs") or {}


@dataclass(frozen=True)
class Diagnostic:
    """A message of the engine or the program, with its severity (``error``, ``warning``, ``info``)."""

    severity: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class PolicyViolation:
    """One policy violation from the engine's event log."""

    pack: str
    policy: str
    enforcement: str
    message: str
    urn: str

    @property
    def resource(self) -> str:
        """``Deployment k8s-demo-deployment``, or the stack for a stack policy."""
        return _resource_label(self.urn) if self.urn else "the stack"


@dataclass(frozen=True)
class PolicyResult:
    """What the event log says about the policy packs: whether one ran, and its violations."""

    packs: tuple[str, ...] = ()
    violations: tuple[PolicyViolation, ...] = ()


@dataclass(frozen=True)
class Preview:
    """A parsed ``pulumi preview --json`` document (with ``--refresh``)."""

    steps: tuple[Step, ...]
    diagnostics: tuple[Diagnostic, ...]
    config: Mapping[str, str]

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> Preview:
        """Build from the JSON object ``pulumi preview --json`` prints."""
        steps = tuple(
            Step(
                op=str(step.get("op", "")),
                urn=str(step.get("urn", "")),
                old=step.get("oldState"),
                new=step.get("newState"),
                detailed_diff=step.get("detailedDiff") or {},
            )
            for step in document.get("steps") or []
        )
        diagnostics = tuple(
            Diagnostic(
                severity=str(item.get("severity", "")),
                message=str(item.get("message", "")),
                urn=str(item.get("urn", "")),
            )
            for item in document.get("diagnostics") or []
        )
        config = {str(key): str(value) for key, value in (document.get("config") or {}).items()}
        return cls(steps=steps, diagnostics=diagnostics, config=config)

    @property
    def errors(self) -> list[Diagnostic]:
        """The error diagnostics: a preview with any of them failed."""
        return [item for item in self.diagnostics if item.severity == "error"]

    def plan_steps(self) -> list[Step]:
        """The last step of each resource: what this update would do to it.

        With ``--refresh``, a resource the refresh found changed has an earlier step
        too (the refresh's own); see ``drift_steps``.
        """
        last: dict[str, Step] = {}
        for step in self.steps:
            last[step.urn] = step
        return [step for step in last.values() if step.op != "refresh" and step.type != STACK_TYPE]

    def drift(self) -> list[Drift]:
        """What the refresh found changed since the last update, per resource.

        In the JSON of ``pulumi preview --refresh`` (3.260, Kubernetes provider 4.25) a
        refresh step keeps the state of the last update, and the resource's plan step
        that follows starts from the refreshed, live state (its ``oldState``). When a
        refresh step was rewritten into an update of its own (a provider that reports a
        diff on read), its ``newState`` is the live state.
        """
        plan = {step.urn: step for step in self.plan_steps()}
        refreshed: dict[str, Step] = {}
        for step in self.steps:
            if step.type != STACK_TYPE and (step.op == "refresh" or plan.get(step.urn, step) is not step):
                refreshed.setdefault(step.urn, step)
        found = []
        for urn, refresh in refreshed.items():
            follows = plan.get(urn)
            live = follows.old if follows is not None and follows.old else refresh.new
            changes = state_changes(refresh.old, live)
            if changes:
                found.append(Drift(resource=follows or refresh, changes=changes))
        return found

    def deployment(self) -> Step | None:
        """The plan step of the Deployment, if the program has one."""
        return next((step for step in self.plan_steps() if step.type == DEPLOYMENT_TYPE), None)


def read_event_log(lines: Iterable[str]) -> PolicyResult:
    """Policy packs and violations from ``pulumi preview --event-log`` (one JSON engine event per line)."""
    packs: list[str] = []
    violations: list[PolicyViolation] = []
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        # The final summary names every pack that ran, as "<name>|<source>|<path>": "<version>".
        for ran in (event.get("summaryEvent") or {}).get("PolicyPacks") or {}:
            name = str(ran).split("|", 1)[0]
            if name not in packs:
                packs.append(name)
        policy = event.get("policyEvent")
        if policy:
            violation = PolicyViolation(
                pack=str(policy.get("policyPackName", "")),
                policy=str(policy.get("policyName", "")),
                enforcement=str(policy.get("enforcementLevel", "")),
                message=str(policy.get("message", "")).strip(),
                urn=str(policy.get("resourceUrn", "")),
            )
            if violation not in violations:
                violations.append(violation)
            if violation.pack and violation.pack not in packs:
                packs.append(violation.pack)
    return PolicyResult(packs=tuple(packs), violations=tuple(violations))


def settings_for(preview: Preview, stack: str, app_version: str) -> Settings:
    """The stack's settings, validated exactly as the program validates them.

    The preview's ``config`` is the stack's config as the engine had it; Pulumi.yaml's
    defaults go underneath, as the CLI merges them. Raises the program's ``pulumi.RunError``.
    """
    values = {**project_defaults(), **preview.config}
    return load_settings(StackConfig(NAME, values), project=NAME, stack=stack, app_version=app_version)


# ---------------------------------------------------------------------------
# Comparing states


_MISSING = object()


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
    """One leaf that differs between two states; ``_MISSING`` on a side where it does not exist."""

    path: str
    old: object
    new: object


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every leaf that differs between ``old`` and ``new``, by path."""
    before, after = flatten(old), flatten(new)
    paths = sorted(set(before) | set(after))
    return [
        Change(path, before.get(path, _MISSING), after.get(path, _MISSING))
        for path in paths
        if before.get(path, _MISSING) != after.get(path, _MISSING)
    ]


def _changes(step: Step) -> list[Change]:
    return diff_values(step.inputs("old"), step.inputs("new"))


def state_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """What differs between two states of one resource, in the fields the program sets.

    Inputs are compared, and outputs too on the paths of the inputs: a refresh reads the
    live object into the outputs (and this provider into the inputs as well), while
    status, resourceVersion and annotations that controllers add are not the program's.
    """
    old_inputs, new_inputs = (old or {}).get("inputs") or {}, (new or {}).get("inputs") or {}
    managed = set(flatten(old_inputs)) | set(flatten(new_inputs))
    found = {change.path: change for change in diff_values(old_inputs, new_inputs)}
    for change in diff_values((old or {}).get("outputs") or {}, (new or {}).get("outputs") or {}):
        if change.path in managed:
            found.setdefault(change.path, change)
    return [found[path] for path in sorted(found)]


@dataclass(frozen=True)
class Drift:
    """A resource whose live state differs from the last update: old is the last update, new the cluster."""

    resource: Step
    changes: list[Change]


def _show(value: object) -> str:
    if value is _MISSING:
        return "(none)"
    if value == UNKNOWN:
        return "(known after the update)"
    return json.dumps(value) if not isinstance(value, str) else value


def _text(value: str) -> str:
    """Free text for Markdown: GitHub would take ``<n>`` for an HTML tag and drop it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _resource_label(urn: str) -> str:
    step = Step(op="", urn=urn, old=None, new=None, detailed_diff={})
    return f"{step.kind} {step.name}"


# ---------------------------------------------------------------------------
# Sections


def _container_image(inputs: Mapping[str, Any]) -> str | None:
    containers = (((inputs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return str(containers[0].get("image")) if containers and containers[0].get("image") else None


def _replicas(inputs: Mapping[str, Any]) -> int | None:
    replicas = (inputs.get("spec") or {}).get("replicas")
    return int(replicas) if isinstance(replicas, int | float) else None


def rollout_happens(step: Step | None) -> bool:
    """Whether the Deployment's pod template changes, so pods are replaced batch by batch."""
    if step is None or step.op not in _KIND_OF_OP:
        return False
    if step.op == "create":
        return True
    return any(path.startswith("spec.template") for path in step.detailed_diff) or any(
        change.path.startswith("spec.template") for change in _changes(step)
    )


def count_changes(preview: Preview) -> dict[str, int]:
    """Changes by kind (create, update, replace, delete) over the plan steps."""
    counts = dict.fromkeys(_KINDS, 0)
    for step in preview.plan_steps():
        kind = _KIND_OF_OP.get(step.op)
        if kind:
            counts[kind] += 1
    return counts


def summary_line(stack: str, preview: Preview) -> str:
    """``**dev**: 1 to update; rollout: yes (the pod template changes).``"""
    counts = count_changes(preview)
    changes = ", ".join(f"{count} to {kind}" for kind, count in counts.items() if count) or "no changes"
    deployment = preview.deployment()
    if not rollout_happens(deployment):
        rollout = "no"
    elif deployment and deployment.op == "create":
        rollout = "yes (new Deployment)"
    else:
        rollout = "yes (the pod template changes)"
    return f"**{stack}**: {changes}; rollout: {rollout}."


def image_section(settings: Settings, deployment: Step | None) -> list[str]:
    """Old -> new image, built or an existing tag, and the digest of a pushed image."""
    new = _container_image(deployment.inputs("new")) if deployment else None
    old = _container_image(deployment.outputs("old") or deployment.inputs("old")) if deployment else None
    built = settings.image_tag == settings.app_version
    if built:
        source = f"built from `app/` (imageTag {settings.image_tag} = app/VERSION)"
    else:
        source = f"existing tag, nothing is built (imageTag {settings.image_tag}, app/VERSION {settings.app_version})"
    lines = ["### Image", ""]
    if new is None:
        lines.append(f"- `{settings.image_repository}:{settings.image_tag}`: {source}")
        return lines
    if old == new:
        lines.append(f"- `{new}` (unchanged)")
    else:
        lines.append(f"- {f'`{old}`' if old else '(none)'} -> `{_show(new)}`")
    lines.append(f"- {source}")
    if "@sha256:" in new:
        lines.append(f"- digest: `{new.split('@', 1)[1]}`")
    elif new == UNKNOWN:
        lines.append("- digest: known once the image is pushed, during the update")
    return lines


def rollout_section(settings: Settings, deployment: Step | None) -> list[str]:
    """The rollout plan, every figure from the stack's settings."""
    old = _replicas(deployment.outputs("old") or deployment.inputs("old")) if deployment else None
    if old is None:
        replicas = f"{settings.rollout.replicas} (new)"
    elif old != settings.rollout.replicas:
        replicas = f"{old} -> {settings.rollout.replicas}"
    else:
        replicas = f"{settings.rollout.replicas} (unchanged)"
    heading = ["### Rollout plan", ""]
    if not rollout_happens(deployment):
        heading += ["No rollout in this change (the pod template stays); the figures hold for the next one.", ""]
    return [
        *heading,
        "| | |",
        "|---|---|",
        f"| replicas | {replicas} |",
        f"| maxSurge | {settings.rollout.surge_pods} pod(s) above replicas (`{settings.rollout.max_surge}`) |",
        f"| maxUnavailable | {settings.rollout.unavailable_pods} pod(s) below replicas "
        f"(`{settings.rollout.max_unavailable}`) |",
        f"| batches | {settings.rollout.batches} |",
        f"| least time | {settings.rollout.least_seconds} s ({settings.rollout.batches} x minReadySeconds "
        f"{settings.rollout.min_ready_seconds} s) |",
        f"| most time `up` waits | {settings.rollout.most_wait_seconds} s |",
        f"| least pods serving | {settings.rollout.least_serving} of {settings.rollout.replicas} |",
    ]


def drift_section(preview: Preview) -> list[str]:
    """What the refresh found changed since the last update, and what the config asks for."""
    lines = ["### Drift", ""]
    drifted = preview.drift()
    if not drifted:
        return [*lines, "None: the cluster matches the last update."]
    for drift in drifted:
        desired = flatten(drift.resource.inputs("new")) if drift.resource.op != "refresh" else {}
        for change in drift.changes:
            wanted = desired.get(change.path, _MISSING)
            asks = f", config asks for `{_show(wanted)}`" if wanted is not _MISSING else ""
            lines.append(
                f"- {drift.resource.kind} {drift.resource.name}: `{change.path}` is `{_show(change.new)}` "
                f"in the cluster (last update: `{_show(change.old)}`){asks}"
            )
    return lines


def policy_section(result: PolicyResult | None, preview: Preview | None = None) -> list[str]:
    """The policy pack's result: passed, or each violation with its enforcement level.

    A violation names its resource by the object's name when ``preview`` has a step for it.
    """
    lines = ["### Policy", ""]
    if result is None:
        return [*lines, "Not run (no event log given)."]
    if not result.packs and not result.violations:
        return [*lines, "No policy pack ran."]
    packs = ", ".join(f"`{pack}`" for pack in result.packs)
    if not result.violations:
        return [*lines, f"Passed: {packs}, no violations."]
    mandatory = sum(1 for violation in result.violations if violation.enforcement == "mandatory")
    lines.append(f"{len(result.violations)} violation(s) in {packs}, {mandatory} mandatory:")
    lines.append("")
    steps = {step.urn: step for step in preview.steps} if preview else {}
    for violation in result.violations:
        step = steps.get(violation.urn)
        resource = f"{step.kind} {step.name}" if step else violation.resource
        message = " ".join(line.strip() for line in violation.message.splitlines() if line.strip())
        lines.append(f"- **{violation.enforcement}** `{violation.policy}` on {resource}: {_text(message)}")
    return lines


def error_section(preview: Preview | None, stderr: str, config_error: pulumi.RunError | None) -> list[str]:
    """Why the preview failed: every bad config key, then the first lines of the error."""
    lines = ["### Preview failed", ""]
    messages = [item.message for item in preview.errors] if preview else []
    if config_error is not None:
        lines += ["Configuration:", "", "```", str(config_error), "```", ""]
        # The program reported the same list; the rest of the errors follow from it or stand apart.
        first = str(config_error).splitlines()[0]
        messages = [message for message in messages if first not in message]
        if not messages:
            return lines[:-1]
        lines += ["Other errors:", ""]
    text = "\n".join(message.rstrip() for message in messages).strip() or stderr.strip() or "(no error message)"
    shown = text.splitlines()
    # Bounded in width too, so no error can push the comment past GitHub's limit.
    lines += ["```", *(line[:ERROR_LINE_WIDTH] for line in shown[:ERROR_LINES]), "```"]
    if len(shown) > ERROR_LINES:
        lines.append(f"({len(shown) - ERROR_LINES} more lines in the job log)")
    return lines


_SYMBOL = {"create": "+", "update": "~", "replace": "+-", "create-replacement": "+-", "delete": "-"}


def diff_blocks(preview: Preview) -> list[str]:
    """One ``diff`` block per changed resource: ``-`` what is there, ``+`` what this update makes it."""
    blocks = []
    for step in preview.plan_steps():
        if step.op not in _SYMBOL:
            continue
        body = [f"{_SYMBOL[step.op]} {step.type} {step.name} ({step.op})"]
        for change in _changes(step):
            if change.old is not _MISSING:
                body.append(f"-   {change.path}: {_show(change.old)}")
            if change.new is not _MISSING:
                body.append(f"+   {change.path}: {_show(change.new)}")
        blocks.append("\n".join(["```diff", *body, "```"]))
    return blocks


@dataclass
class Trimmed:
    """The diff blocks that fit, and what was left out."""

    blocks: list[str] = field(default_factory=list)
    #: Resources whose diff is shown in part or not at all.
    trimmed_resources: int = 0
    dropped_lines: int = 0


def fit(blocks: Sequence[str], budget: int) -> Trimmed:
    """Keep whole blocks while they fit in ``budget`` characters; cut the first that does not, by lines."""
    kept = Trimmed()
    used = 0
    for index, block in enumerate(blocks):
        if used + len(block) + 1 <= budget:
            kept.blocks.append(block)
            used += len(block) + 1
            continue
        lines = block.splitlines()
        # The last line closes the code fence; keep room for it and for the cut line note.
        partial: list[str] = []
        room = budget - used - len(lines[-1]) - 80
        for line in lines[:-1]:
            if room - len(line) - 1 < 0:
                break
            partial.append(line)
            room -= len(line) + 1
        if len(partial) > 1:
            cut = len(lines) - 1 - len(partial)
            kept.blocks.append("\n".join([*partial, f"... {cut} more lines", lines[-1]]))
            kept.dropped_lines += cut
            kept.trimmed_resources += 1
            rest = blocks[index + 1 :]
        else:
            rest = blocks[index:]
        kept.trimmed_resources += len(rest)
        kept.dropped_lines += sum(len(block.splitlines()) - 3 for block in rest)
        break
    return kept


def diff_section(preview: Preview, budget: int, stack: str) -> list[str]:
    """The full diff, collapsed, trimmed to ``budget`` characters; says what was trimmed."""
    blocks = diff_blocks(preview)
    if not blocks:
        return []
    head = ["<details>", "<summary>Full diff</summary>", ""]
    tail = ["", "</details>"]
    # The trimming note below is under 300 characters.
    note_room = 300
    kept = fit(blocks, budget - len("\n".join(head + tail)) - note_room)
    lines = [*head, *kept.blocks]
    if kept.trimmed_resources:
        lines += [
            "",
            f"Trimmed to stay under GitHub's {GITHUB_COMMENT_LIMIT:,}-character limit: {kept.dropped_lines} diff "
            f"line(s) of {kept.trimmed_resources} resource(s) left out. `make preview STACK={stack}` shows everything.",
        ]
    return lines + tail


# ---------------------------------------------------------------------------
# The comment


@dataclass(frozen=True)
class Outcome:
    """What a preview produced: the parsed document (if any), its exit status and its stderr."""

    preview: Preview | None
    returncode: int = 0
    stderr: str = ""
    policy: PolicyResult | None = None

    @property
    def failed(self) -> bool:
        """Failed when pulumi exited non-zero, printed no JSON, or reported an error."""
        return self.returncode != 0 or self.preview is None or bool(self.preview.errors)


def render(stack: str, outcome: Outcome, app_version: str) -> str:
    """The comment's Markdown, at most ``GITHUB_COMMENT_LIMIT`` characters; ``app_version`` is app/VERSION's."""
    preview = outcome.preview
    settings: Settings | None = None
    config_error: pulumi.RunError | None = None
    if preview is not None:
        try:
            settings = settings_for(preview, stack, app_version)
        except pulumi.RunError as error:
            config_error = error

    head = [marker(stack), f"## Preview of stack `{stack}`", ""]
    if outcome.failed or config_error is not None:
        mandatory = [v for v in (outcome.policy.violations if outcome.policy else ()) if v.enforcement == "mandatory"]
        why = f" ({len(mandatory)} mandatory policy violation(s))" if mandatory else ""
        head += [f"**{stack}**: the preview failed{why}; nothing would change until it passes.", ""]
        head += error_section(preview, outcome.stderr, config_error)
        # Drift often explains the failure (a field another manager now owns); show it when there is some.
        if preview is not None and preview.drift():
            head += ["", *drift_section(preview)]
        # A pack that saw no resources passes trivially; only its violations say something here.
        if outcome.policy is not None and outcome.policy.violations:
            head += ["", *policy_section(outcome.policy, preview)]
        return "\n".join(head) + "\n"

    # Not failed: both were read.
    assert preview is not None
    assert settings is not None
    deployment = preview.deployment()
    head += [summary_line(stack, preview), ""]
    for section in (
        image_section(settings, deployment),
        rollout_section(settings, deployment),
        drift_section(preview),
        policy_section(outcome.policy, preview),
    ):
        head += [*section, ""]
    text = "\n".join(head)
    body = "\n".join(diff_section(preview, GITHUB_COMMENT_LIMIT - len(text) - 2, stack))
    return f"{text}\n{body}\n" if body else text


# ---------------------------------------------------------------------------
# Command line


def run_preview(stack: str, policy_pack: str | None, cwd: Path) -> Outcome:
    """Run ``pulumi preview --refresh --json`` for ``stack`` in ``cwd``, with its event log for policy results."""
    with tempfile.TemporaryDirectory(prefix="pr-comment-") as tmp:
        events = Path(tmp) / "events.jsonl"
        command = ["pulumi", "preview", "--refresh", "--json", "--stack", stack, "--event-log", str(events)]
        if policy_pack:
            command += ["--policy-pack", policy_pack]
        # The CLI offers --event-log only with PULUMI_DEBUG_COMMANDS set (the Automation API sets it too).
        env = {**os.environ, "PULUMI_DEBUG_COMMANDS": "true"}
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        policy = read_event_log(events.read_text(encoding="utf-8").splitlines()) if events.exists() else None
    return Outcome(preview=_parse(result.stdout), returncode=result.returncode, stderr=result.stderr, policy=policy)


def _parse(text: str) -> Preview | None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    return Preview.parse(document) if isinstance(document, Mapping) else None


def _lines(path: Path) -> Iterator[str]:
    yield from path.read_text(encoding="utf-8").splitlines()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 passed, 2 preview failed, 1 no comment)."""
    parser = argparse.ArgumentParser(prog="python -m ops.pr_comment", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack previewed (names the comment's marker)")
    parser.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    parser.add_argument("--preview-json", type=Path, help="read this `pulumi preview --refresh --json` output")
    parser.add_argument("--event-log", type=Path, help="with --preview-json: its `--event-log` file (policy results)")
    parser.add_argument("--policy-pack", help="without --preview-json: run the preview with this policy pack")
    parser.add_argument(
        "--project-dir", type=Path, default=ROOT, help="where app/VERSION is (default: the project of ops/)"
    )
    args = parser.parse_args(argv)
    if args.preview_json is None and args.event_log is not None:
        parser.error("--event-log goes with --preview-json; without it the command writes its own")
    if args.preview_json is not None and args.policy_pack is not None:
        parser.error("--policy-pack runs a preview; with --preview-json, pass that preview's --event-log instead")

    if args.preview_json is not None:
        try:
            text = args.preview_json.read_text(encoding="utf-8")
            policy = read_event_log(_lines(args.event_log)) if args.event_log else None
        except (OSError, json.JSONDecodeError) as error:
            print(f"pr_comment: cannot read the preview: {error}", file=sys.stderr)
            return 1
        preview = _parse(text)
        stderr = "" if preview else f"{args.preview_json} holds no preview JSON"
        outcome = Outcome(preview=preview, stderr=stderr, policy=policy)
    else:
        try:
            outcome = run_preview(args.stack, args.policy_pack, args.project_dir)
        except FileNotFoundError:
            print("pr_comment: the pulumi CLI is not on PATH (see README, Prerequisites)", file=sys.stderr)
            return 1

    try:
        app_version = read_app_version(args.project_dir)
    except OSError as error:
        print(f"pr_comment: cannot read the app's version (--project-dir {args.project_dir}): {error}", file=sys.stderr)
        return 1
    comment = render(args.stack, outcome, app_version)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(comment, encoding="utf-8")
    print(f"{args.stack}: {len(comment)} characters in {args.out}" + (" (preview failed)" if outcome.failed else ""))
    return 2 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())

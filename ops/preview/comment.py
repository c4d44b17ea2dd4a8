"""The pull-request comment: its sections top to bottom, the size budget, the Markdown.

Top to bottom: a hidden marker that identifies the comment (``<!-- k8s-demo-preview:<stack> -->``),
one summary line, the image (old -> new, built or an existing tag), the rollout plan from
the stack's validated settings, drift (what the refresh found changed in the cluster since
the last update), the policy pack's result, then the full diff in a collapsed section. The
comment stays under GitHub's 65,536-character limit by trimming the diff, never the rest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.rollout import CANARY
from components.settings import Settings
from ops.engine import Step
from ops.preview.diff import MISSING, flatten, input_changes
from ops.preview.report import UNKNOWN, PolicyResult, Preview, kind_of, name_of, resource_label, settings_for

#: GitHub refuses a comment body longer than this many characters.
GITHUB_COMMENT_LIMIT = 65_536

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


def _show(value: object) -> str:
    if value is MISSING:
        return "(none)"
    if value == UNKNOWN:
        return "(known after the update)"
    return json.dumps(value) if not isinstance(value, str) else value


def _text(value: str) -> str:
    """Free text for Markdown: GitHub would take ``<n>`` for an HTML tag and drop it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _violation_resource(urn: str) -> str:
    """The resource a violation names: ``Deployment web-deployment``, or the stack for a stack policy."""
    return resource_label(urn) if urn else "the stack"


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
        change.path.startswith("spec.template") for change in input_changes(step)
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


def image_section(settings: Settings, deployment: Step | None, provenance: str = "") -> list[str]:
    """Old -> new image, built or an existing tag or a pinned digest, and the digest of a pushed image.

    ``provenance`` is where a promoted image comes from (``promoted from dev release 7, sha256:…``),
    empty for any other preview.
    """
    new = _container_image(deployment.inputs("new")) if deployment else None
    old = _container_image(deployment.outputs("old") or deployment.inputs("old")) if deployment else None
    built = settings.image_tag == settings.app_version and not settings.image_digest
    if provenance:
        source = f"{provenance}; nothing is built (imageTag {settings.image_tag}, imageDigest pinned)"
    elif settings.image_digest:
        source = f"pinned digest, nothing is built (imageTag {settings.image_tag}, imageDigest {settings.image_digest})"
    elif built:
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
        *canary_rows(settings),
    ]


def canary_rows(settings: Settings) -> list[str]:
    """The canary stage of ``make up`` (``rolloutStrategy: canary``): pods, share, window, thresholds, most time."""
    if settings.strategy != CANARY:
        return []
    canary, rollout = settings.canary, settings.rollout
    latency = f"; p99 at most {canary.max_p99_ms} ms" if canary.max_p99_ms else ""
    return [
        f"| canary stage (`make up`) | {canary.replicas} canary pod(s) beside {rollout.replicas}: "
        f"{canary.share(rollout.replicas):.0%} of requests, before the rollout above |",
        f"| canary analysis | {canary.analysis_seconds} s; errors at most {canary.max_error_rate:g} point(s) above the "
        f"stable pods'{latency}; at least {canary.min_requests} requests (probes make up the rest) |",
        f"| most time the canary adds | {canary.most_added_seconds(rollout)} s (ready {rollout.step_seconds} s "
        f"+ analysis {canary.analysis_seconds} s) |",
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
            wanted = desired.get(change.path, MISSING)
            asks = f", config asks for `{_show(wanted)}`" if wanted is not MISSING else ""
            lines.append(
                f"- {kind_of(drift.resource)} {name_of(drift.resource)}: `{change.path}` is `{_show(change.new)}` "
                f"in the cluster (last update: `{_show(change.old)}`){asks}"
            )
    return lines


def policy_section(result: PolicyResult, preview: Preview | None = None) -> list[str]:
    """The policy pack's result: passed, or each violation with its enforcement level.

    A violation names its resource by the object's name when ``preview`` has a step for it.
    """
    lines = ["### Policy", ""]
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
        resource = f"{kind_of(step)} {name_of(step)}" if step else _violation_resource(violation.urn)
        message = " ".join(line.strip() for line in violation.message.splitlines() if line.strip())
        lines.append(f"- **{violation.enforcement}** `{violation.policy}` on {resource}: {_text(message)}")
    return lines


def error_section(preview: Preview, config_error: pulumi.RunError | None) -> list[str]:
    """Why the preview failed: every bad config key, then the first lines of the error (the CLI's, if no other)."""
    lines = ["### Preview failed", ""]
    messages = [item.text for item in preview.errors]
    if config_error is not None:
        lines += ["Configuration:", "", "```", str(config_error), "```", ""]
        # The program reported the same list; the rest of the errors follow from it or stand apart.
        first = str(config_error).splitlines()[0]
        messages = [message for message in messages if first not in message]
        if not messages:
            return lines[:-1]
        lines += ["Other errors:", ""]
    text = "\n".join(message.rstrip() for message in messages).strip()
    text = text or preview.report.stderr.strip() or "(no error message)"
    shown = text.splitlines()
    # Bounded in width too, so no error can push the comment past GitHub's limit.
    lines += ["```", *(line[:ERROR_LINE_WIDTH] for line in shown[:ERROR_LINES]), "```"]
    if len(shown) > ERROR_LINES:
        lines.append(f"({len(shown) - ERROR_LINES} more lines in the job log)")
    return lines


_SYMBOL = {"create": "+", "update": "~", "replace": "+-", "create-replacement": "+-", "delete": "-"}


def _tree_order(step: Step) -> tuple[list[str], str]:
    """A resource's place in the tree: its URN's type chain (parent types first), then its name."""
    # urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>
    _, _, types, name = step.urn.split("::", 3)
    return types.split("$"), name


def diff_blocks(preview: Preview) -> list[str]:
    """One ``diff`` block per changed resource: ``-`` what is there, ``+`` what this update makes it.

    Parents before their children, then by type and name: the engine emits the steps of independent
    resources in whatever order they finish, and the comment must not change when nothing else did.
    """
    blocks = []
    for step in sorted(preview.plan_steps(), key=_tree_order):
        if step.op not in _SYMBOL:
            continue
        body = [f"{_SYMBOL[step.op]} {step.type} {name_of(step)} ({step.op})"]
        for change in input_changes(step):
            if change.old is not MISSING:
                body.append(f"-   {change.path}: {_show(change.old)}")
            if change.new is not MISSING:
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


def render(stack: str, preview: Preview, app_version: str, *, provenance: str = "") -> str:
    """The comment's Markdown, at most ``GITHUB_COMMENT_LIMIT`` characters; ``app_version`` is app/VERSION's.

    ``provenance`` names where a promoted image comes from, in the image section (``make promote PREVIEW=1``).
    """
    settings: Settings | None = None
    config_error: pulumi.RunError | None = None
    try:
        settings = settings_for(preview, stack, app_version)
    except pulumi.RunError as error:
        config_error = error
    policy = preview.policy

    head = [marker(stack), f"## Preview of stack `{stack}`", ""]
    if preview.failed or settings is None:
        mandatory = [v for v in policy.violations if v.enforcement == "mandatory"]
        why = f" ({len(mandatory)} mandatory policy violation(s))" if mandatory else ""
        head += [f"**{stack}**: the preview failed{why}; nothing would change until it passes.", ""]
        head += error_section(preview, config_error)
        # Drift often explains the failure (a field another manager now owns); show it when there is some.
        if preview.drift():
            head += ["", *drift_section(preview)]
        # A pack that saw no resources passes trivially; only its violations say something here.
        if policy.violations:
            head += ["", *policy_section(policy, preview)]
        return "\n".join(head) + "\n"

    deployment = preview.deployment()
    head += [summary_line(stack, preview), ""]
    for section in (
        image_section(settings, deployment, provenance),
        rollout_section(settings, deployment),
        drift_section(preview),
        policy_section(policy, preview),
    ):
        head += [*section, ""]
    text = "\n".join(head)
    body = "\n".join(diff_section(preview, GITHUB_COMMENT_LIMIT - len(text) - 2, stack))
    return f"{text}\n{body}\n" if body else text

"""``ops.preview``: the pull-request comment of a real ``pulumi preview --refresh`` with the policy pack.

The previews in tests/data/pr_comment/ are the engine events of real previews, recorded
from the real Pulumi CLI, language host and Kubernetes provider against the sandbox
(``tools/capture_engine_events.py``), with app/VERSION at ``CAPTURE_APP_VERSION`` so that
every tag was an existing image. Each one is built into a report as ``make pr-preview``
builds it, rendered, and compared with its golden comment in tests/golden/pr_comment/.
Regenerate the goldens after a deliberate change with ``UPDATE_GOLDENS=1 make unit``
and read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest

from components.settings import Settings, StackConfig, load_settings
from ops.engine import State, Step
from ops.preview.__main__ import main, recorded_preview
from ops.preview.comment import GITHUB_COMMENT_LIMIT, diff_blocks, fit, image_section, render
from ops.preview.report import UNKNOWN, Preview
from project import DEPLOYMENT_TYPE, NAME, config_key
from tests.examples import example_config

DATA = Path(__file__).parent / "data" / "pr_comment"
GOLDEN = Path(__file__).parent / "golden" / "pr_comment"
#: app/VERSION in the project copy the previews were captured from: no capture built an image.
CAPTURE_APP_VERSION = "99.0-capture"
#: Each capture and the stack it previewed.
CASES = {
    "first-deploy": "dev",
    "release": "dev",
    "rollback": "dev",
    "replicas": "dev",
    "drift": "dev",
    "policy-violation": "staging",
    "failed-config": "staging",
}


def preview(case: str) -> Preview:
    """The recorded preview of ``case`` as the command builds it from the engine's events."""
    return recorded_preview(DATA / f"{case}.events.jsonl")


def comment(case: str) -> str:
    return render(CASES[case], preview(case), CAPTURE_APP_VERSION)


@pytest.mark.parametrize("case", sorted(CASES))
def test_comment_matches_its_golden(case: str) -> None:
    golden = GOLDEN / f"{case}.md"
    text = comment(case)
    if os.environ.get("UPDATE_GOLDENS") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_both_rollout_bounds_zero_is_refused_in_the_comment() -> None:
    # The release capture with a config the program refuses: no rollout plan, the reason instead.
    report = preview("release").report
    config = {**report.config, config_key("maxSurge"): "0", config_key("maxUnavailable"): "0%"}
    text = render("dev", Preview(dataclasses.replace(report, config=config)), CAPTURE_APP_VERSION)
    assert "  - k8s-demo:maxSurge = 0: must not be zero while k8s-demo:maxUnavailable = '0%' is zero too" in text


# An oversized diff: the release capture with thousands of annotations added to the Deployment.
ANNOTATIONS = 4000


def _annotated(step: Step) -> Step:
    assert step.new is not None
    inputs: dict[str, Any] = dict(step.new.inputs)
    metadata = dict(inputs["metadata"])
    notes = {f"example.com/note-{index:04d}": "x" * 40 for index in range(ANNOTATIONS)}
    inputs["metadata"] = {**metadata, "annotations": {**(metadata.get("annotations") or {}), **notes}}
    return dataclasses.replace(step, new=dataclasses.replace(step.new, inputs=inputs))


@pytest.fixture(scope="module")
def oversized() -> tuple[Preview, str]:
    """The enlarged release preview and its comment."""
    report = preview("release").report
    last = max(index for index, step in enumerate(report.steps) if step.type == DEPLOYMENT_TYPE)
    steps = tuple(_annotated(step) if index == last else step for index, step in enumerate(report.steps))
    big = Preview(dataclasses.replace(report, steps=steps))
    return big, render("dev", big, CAPTURE_APP_VERSION)


def test_oversized_comment_fits_githubs_limit(oversized: tuple[Preview, str]) -> None:
    assert len(oversized[1]) <= GITHUB_COMMENT_LIMIT


def test_oversized_comment_keeps_everything_above_the_diff(oversized: tuple[Preview, str]) -> None:
    assert oversized[1].split("<details>")[0] == comment("release").split("<details>")[0]


def test_oversized_comment_counts_the_lines_it_left_out(oversized: tuple[Preview, str]) -> None:
    big, text = oversized
    every = sum(len(block.splitlines()) - 3 for block in diff_blocks(big))
    shown = sum(1 for line in text.splitlines() if line.startswith(("+   ", "-   ")))
    match = re.search(r"limit: (\d+) diff line\(s\) of 1 resource\(s\) left out", text)
    assert match is not None
    assert int(match.group(1)) == every - shown


# Beyond the captures: what the sandbox cannot show (it builds and pushes no image).


def _settings(image_tag: str, app_version: str) -> Settings:
    values = {**example_config("dev"), config_key("imageTag"): image_tag}
    return load_settings(StackConfig(NAME, values), project=NAME, stack="dev", app_version=app_version)


def _deployment(old_image: str, new_image: str) -> Step:
    def state(image: str) -> State:
        return State(DEPLOYMENT_TYPE, inputs={"spec": {"template": {"spec": {"containers": [{"image": image}]}}}})

    urn = "urn:pulumi:dev::k8s-demo::k8s-demo:app:WebApp$kubernetes:apps/v1:Deployment::k8s-demo-deployment"
    return Step(op="update", urn=urn, type=DEPLOYMENT_TYPE, old=state(old_image), new=state(new_image))


def test_image_tag_equal_to_app_version_is_a_build() -> None:
    lines = image_section(_settings("0.3", "0.3"), _deployment("k8s-demo:0.2", "k8s-demo:0.3"))
    assert lines[3] == "- built from `app/` (imageTag 0.3 = app/VERSION)"


def test_other_image_tag_is_an_existing_image() -> None:
    lines = image_section(_settings("0.1", "0.3"), _deployment("k8s-demo:0.2", "k8s-demo:0.1"))
    assert lines[3] == "- existing tag, nothing is built (imageTag 0.1, app/VERSION 0.3)"


def test_pushed_image_shows_its_digest() -> None:
    pushed = "registry.example.com/team/k8s-demo@sha256:" + "ab" * 32
    lines = image_section(_settings("0.3", "0.3"), _deployment("k8s-demo:0.2", pushed))
    assert lines[-1] == f"- digest: `sha256:{'ab' * 32}`"


def _promoted_settings(digest: str) -> Settings:
    values = {
        **example_config("prod"),
        config_key("imageTag"): "0.3",
        config_key("imageDigest"): digest,
    }
    return load_settings(StackConfig(NAME, values), project=NAME, stack="prod", app_version="0.3")


def test_a_pinned_digest_is_no_build_even_under_the_apps_version() -> None:
    digest = "sha256:" + "ab" * 32
    pinned = f"registry.example.com/k8s-demo/k8s-demo@{digest}"
    lines = image_section(_promoted_settings(digest), _deployment("k8s-demo:0.2", pinned))
    assert lines[3] == f"- pinned digest, nothing is built (imageTag 0.3, imageDigest {digest})"


def test_a_promotion_names_where_its_image_comes_from() -> None:
    digest = "sha256:" + "ab" * 32
    pinned = f"registry.example.com/k8s-demo/k8s-demo@{digest}"
    provenance = f"promoted from dev release 7, {digest}"
    lines = image_section(_promoted_settings(digest), _deployment("k8s-demo:0.2", pinned), provenance)
    assert lines[3] == f"- promoted from dev release 7, {digest}; nothing is built (imageTag 0.3, imageDigest pinned)"


def test_digest_not_pushed_yet_says_when_it_is_known() -> None:
    lines = image_section(_settings("0.3", "0.3"), _deployment("k8s-demo:0.2", UNKNOWN))
    assert lines[-1] == "- digest: known once the image is pushed, during the update"


def test_fit_keeps_whole_blocks_that_fit() -> None:
    blocks = ["```diff\n+ a\n```", "```diff\n+ b\n```"]
    kept = fit(blocks, 1000)
    assert (kept.blocks, kept.trimmed_resources, kept.dropped_lines) == (blocks, 0, 0)


def test_fit_cuts_the_first_block_that_does_not_fit_by_lines() -> None:
    # 103 lines: fence, header, 100 diff lines of 10 characters, fence. 800 characters leave room for
    # 64 of the first block's diff lines (36 cut); the second block (100 diff lines) is left out: 2 trimmed.
    block = "\n".join(["```diff", "~ x", *(f"+ line {index:03d}" for index in range(100)), "```"])
    kept = fit([block, block], 800)
    assert (kept.trimmed_resources, kept.dropped_lines, kept.blocks[0].splitlines()[-2:]) == (
        2,
        136,
        ["... 36 more lines", "```"],
    )


def test_events_and_a_policy_pack_are_refused_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--stack", "dev", "--out", "x.md", "--events", "e.jsonl", "--policy-pack", "policy"])
    assert "--policy-pack runs a preview; --events renders one that ran already" in capsys.readouterr().err


def test_failed_preview_still_writes_its_comment_and_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "comment.md"
    status = main(["--stack", "staging", "--out", str(out), "--events", str(DATA / "failed-config.events.jsonl")])
    assert (status, out.read_text(encoding="utf-8").splitlines()[0]) == (2, "<!-- k8s-demo-preview:staging -->")


def test_failed_preview_prints_its_whole_error_for_the_job_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = str(DATA / "failed-config.events.jsonl")
    main(["--stack", "staging", "--out", str(tmp_path / "comment.md"), "--events", events])
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == [
        "error: invalid configuration for stack 'staging' (3 problems); nothing was changed:",
        "  - k8s-demo:imageTag = 'latest': 'latest' is refused: name the version, so rollback and history mean "
        "something",
    ]


def test_diff_blocks_do_not_depend_on_the_order_the_engine_emitted_the_steps() -> None:
    recorded = preview("first-deploy")
    by_resource: dict[str, list[Step]] = {}
    for step in recorded.steps:
        by_resource.setdefault(step.urn, []).append(step)
    # The resources in the opposite order, each one's own steps (refresh, then plan) kept in theirs.
    reordered = tuple(step for steps in reversed(by_resource.values()) for step in steps)
    assert reordered != recorded.steps
    shuffled = Preview(dataclasses.replace(recorded.report, steps=reordered))
    assert diff_blocks(shuffled) == diff_blocks(recorded)

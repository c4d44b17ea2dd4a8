"""Releases from history recorded by the real CLI in the sandbox (tests/data/), read as the command reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.engine import HISTORY_PAGE_SIZE
from ops.releases.command import PulumiStack
from ops.releases.model import (
    Refusal,
    Release,
    auto_rollback_target,
    releases,
    rollback_target,
    running_release,
    table,
)
from tests.releases_fakes import no_git, recorded, recorded_stack


def dev_releases(tmp_path: Path) -> list[Release]:
    return releases(PulumiStack(recorded_stack(recorded("history-dev.json"), tmp_path)[0]).history(), no_git)


def test_every_update_is_a_release_and_the_refresh_is_not(tmp_path: Path) -> None:
    assert [(r.number, r.image_tag, r.result) for r in dev_releases(tmp_path)] == [
        (1, "0.1", "succeeded"),
        (2, "0.2", "succeeded"),
        (3, "0.3", "succeeded"),
        (4, "0.1", "succeeded"),
        (5, "0.2", "succeeded"),
        (6, "0.4-broken", "failed"),
        (7, "0.2", "succeeded"),
        (8, "99.0-e2e", "failed"),
        (9, "0.5-broken", "failed"),
        (10, "0.2", "succeeded"),
    ]


def test_the_marker_release_is_resolved_from_its_message(tmp_path: Path) -> None:
    marker = dev_releases(tmp_path)[7]
    assert (marker.recorded_tag, marker.tag_source) == ("app/VERSION", "app/VERSION, named in the message")


def test_the_cli_pages_history_by_ten(tmp_path: Path) -> None:
    # Why the command pages: a plain `stack.history()` loses the oldest release of this stack.
    stack, _ = recorded_stack(recorded("history-dev.json"), tmp_path)
    assert len(stack.history()) == 10
    assert len(recorded("history-dev.json")) == 11


def test_history_is_read_page_by_page_until_a_short_page(tmp_path: Path) -> None:
    entries = recorded("history-dev.json")
    many = entries * (2 * HISTORY_PAGE_SIZE // len(entries) + 1)
    stack, cli = recorded_stack(many, tmp_path)
    assert len(PulumiStack(stack).history()) == len(many)
    assert [call[call.index("--page") + 1] for call in cli.history_calls] == ["1", "2", "3"]


def test_history_is_read_without_decrypting_secrets(tmp_path: Path) -> None:
    stack, cli = recorded_stack(recorded("history-dev.json"), tmp_path)
    PulumiStack(stack).history()
    assert [("--show-secrets" in call) for call in cli.history_calls] == [False]


def test_table_of_recorded_history(tmp_path: Path) -> None:
    lines = table(dev_releases(tmp_path)).splitlines()
    assert lines[:3] == [
        "RELEASE  TIME (UTC)           IMAGE TAG   RESULT     COMMIT         MESSAGE",
        "     10  2026-11-27 14:57:10  0.2         succeeded  a05daa3-dirty  "
        "rollback to release 7: image k8s-demo:0.2, stack dev",
        "      9  2026-11-27 14:55:41  0.5-broken  failed     a05daa3-dirty  "
        "pulumi up: image k8s-demo:0.5-broken, stack dev",
    ]
    assert lines[-1] == (
        "      1  2026-11-27 14:51:11  0.1         succeeded  975926f        pulumi up: image k8s-demo:0.1, stack dev"
    )
    assert len(lines) == 11


def test_three_releases_number_from_the_oldest(tmp_path: Path) -> None:
    stack, _ = recorded_stack(recorded("history-three-releases.json"), tmp_path)
    found = releases(PulumiStack(stack).history(), no_git)
    assert [(r.number, r.image_tag, r.commit_label) for r in found] == [
        (1, "0.1", "975926f"),
        (2, "0.2", "5071bc5"),
        (3, "0.3", "7ffa943"),
    ]


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("11", r"^there is no release 11: releases are 1 to 10"),
        ("9", r"^release 9 \(tag 0\.5-broken\) failed"),
        ("8", r"^release 8 \(tag 99\.0-e2e\) failed"),
        ("0.2", r"^tag 0\.2 is already running \(release 10\)"),
    ],
)
def test_recorded_refusals(tmp_path: Path, value: str, refusal: str) -> None:
    history = PulumiStack(recorded_stack(recorded("history-dev.json"), tmp_path)[0]).history()
    found = releases(history, no_git)
    with pytest.raises(Refusal, match=refusal):
        rollback_target(value, found, running_release(history, found))


def test_recorded_auto_rollback_went_to_the_last_successful_release(tmp_path: Path) -> None:
    before_failure = dev_releases(tmp_path)[:5]
    decision = auto_rollback_target(before_failure, "0.4-broken")
    assert decision.release is not None
    assert (decision.release.number, decision.release.image_tag) == (5, "0.2")

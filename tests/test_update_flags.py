"""make up's ARGS: Pulumi's update flags reach the Automation API with Pulumi's meaning; the rest is refused by name."""

from __future__ import annotations

import inspect

import pytest
from pulumi import automation as auto

from ops.update_flags import Refused, UpdateFlags, parse


def test_no_flags_are_pulumis_defaults() -> None:
    assert parse([]) == UpdateFlags()


def test_each_flag_reaches_stack_up_under_its_own_name() -> None:
    flags = parse(
        [
            "--skip-preview",
            "--diff",
            "--refresh",
            "--target",
            "urn:a",
            "-t",
            "urn:b",
            "--target-dependents",
            "--exclude",
            "urn:c",
            "--exclude-dependents",
            "--replace",
            "urn:d",
            "--parallel",
            "4",
            "--expect-no-changes",
            "--policy-pack",
            "policy",
            "--policy-pack-config",
            "p.json",
            "--continue-on-error",
        ]
    )
    assert flags.up_kwargs() == {
        "diff": True,
        "refresh": True,
        "target": ["urn:a", "urn:b"],
        "target_dependents": True,
        "exclude": ["urn:c"],
        "exclude_dependents": True,
        "replace": ["urn:d"],
        "parallel": 4,
        "expect_no_changes": True,
        "policy_packs": ["policy"],
        "policy_pack_configs": ["p.json"],
        "continue_on_error": True,
    }


@pytest.mark.parametrize("method", [auto.Stack.up, auto.Stack.preview])
def test_every_keyword_is_one_the_automation_api_takes(method: object) -> None:
    kwargs = UpdateFlags().up_kwargs() if method is auto.Stack.up else UpdateFlags().preview_kwargs()
    assert set(kwargs) - set(inspect.signature(method).parameters) == set()  # type: ignore[arg-type]


def test_unset_flags_pass_nothing() -> None:
    assert {key for key, value in UpdateFlags().up_kwargs().items() if value is not None} == set()


def test_message_is_kept_for_the_command() -> None:
    assert parse(["-m", "hot fix"]).message == "hot fix"


@pytest.mark.parametrize(
    ("argv", "confirm"),
    [([], True), (["--yes"], False), (["-y"], False), (["--skip-preview"], False), (["-f"], False)],
)
def test_yes_and_skip_preview_each_skip_the_confirmation(argv: list[str], confirm: bool) -> None:
    assert parse(argv).confirm is confirm


def test_an_automatic_rollback_updates_the_whole_stack() -> None:
    flags = parse(["--target", "urn:a", "--replace", "urn:b", "--diff", "--parallel", "2"])
    assert flags.for_rollback() == UpdateFlags(yes=True, diff=True, parallel=2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--plan", "plan.json"],
            "make up cannot pass --plan on: make up runs the update it previews; "
            "`pulumi up --plan <file>` applies a saved plan",
        ),
        (["--stack", "prod"], "make up cannot pass --stack on: make up takes the stack as STACK=<name>"),
        (
            ["--refresh=false"],
            "make up cannot pass --refresh=false on: the Automation API can only add --refresh, so Pulumi.yaml's "
            "`refresh: always` applies; run `pulumi up --refresh=false` to skip the refresh once",
        ),
        (
            ["--show-sames"],
            "make up cannot pass --show-sames on: not a pulumi up flag it takes",
        ),
        (
            ["--parallel", "0"],
            "make up cannot take these flags: argument --parallel/-p: must be a whole number >= 1, got '0'",
        ),
    ],
)
def test_a_flag_it_cannot_honour_is_refused_by_name(argv: list[str], message: str) -> None:
    with pytest.raises(Refused) as refused:
        parse(argv)
    assert str(refused.value) == message


def test_json_and_out_are_make_ups_own_flags_and_pass_nothing_to_the_engine() -> None:
    assert parse(["--yes", "--json", "--out", "build/up.json"]) == UpdateFlags(yes=True)

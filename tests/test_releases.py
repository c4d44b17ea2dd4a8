"""Releases from update history: numbering, tags, the rollback rules and the automatic rollback's choice."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
import pytest
from pulumi import automation as auto

from components.settings import load_settings
from components.values import TAG_RULE
from ops.diagnosis import PROGRESS_DEADLINE
from ops.releases.model import (
    AppVersionAt,
    PushRefusal,
    Refusal,
    Release,
    auto_rollback_target,
    cause_line,
    cause_tag_value,
    causes_in_tags,
    push_refusal,
    release_message,
    releases,
    rollback_target,
    rollout_failure,
    running_release,
    table,
    tag_in_message,
)
from tests.releases_fakes import no_git, update

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32


def committed(version: str) -> AppVersionAt:
    def at(commit: str) -> str | None:
        return version if commit == COMMIT else None

    return at


def numbered(*entries: auto.UpdateSummary) -> list[Release]:
    return releases(list(entries), no_git)


# Numbering and what counts as a release.


def test_releases_are_numbered_oldest_first_whatever_the_history_order() -> None:
    found = numbered(update("10:02", tag="0.2"), update("10:01", tag="0.1"), update("10:03", tag="0.3"))
    assert [(r.number, r.image_tag) for r in found] == [(1, "0.1"), (2, "0.2"), (3, "0.3")]


def test_failed_updates_are_releases_too() -> None:
    found = numbered(update("10:01", tag="0.1"), update("10:02", tag="0.2-broken", result="failed"))
    assert [(r.number, r.result) for r in found] == [(1, "succeeded"), (2, "failed")]


def test_refresh_and_destroy_are_not_releases() -> None:
    found = numbered(
        update("10:01", tag="0.1"),
        update("10:02", tag="0.1", kind="refresh"),
        update("10:03", tag="0.1", kind="destroy"),
        update("10:04", tag="0.2"),
    )
    assert [(r.number, r.image_tag) for r in found] == [(1, "0.1"), (2, "0.2")]


def test_message_keeps_its_first_line() -> None:
    (found,) = numbered(update("10:01", tag="0.1", message="Release 0.1\n\nLong body"))
    assert found.message == "Release 0.1"


# The tag of a release.


def test_an_explicit_tag_is_the_recorded_one() -> None:
    (found,) = releases([update("10:01", tag="0.1", commit=COMMIT)], committed("9.9"))
    assert (found.image_tag, found.tag_source) == ("0.1", "imageTag")


def test_the_marker_is_app_version_at_the_recorded_commit() -> None:
    (found,) = releases([update("10:01", tag="app/VERSION", commit=COMMIT)], committed("0.2"))
    assert (found.image_tag, found.tag_source) == ("0.2", "app/VERSION at 0123456")


def test_an_unset_tag_is_the_marker() -> None:
    (found,) = releases([update("10:01", tag=None, commit=COMMIT)], committed("0.2"))
    assert (found.recorded_tag, found.image_tag) == ("app/VERSION", "0.2")


def test_the_marker_is_the_image_named_in_the_message() -> None:
    entry = update(
        "10:01",
        tag="app/VERSION",
        commit=COMMIT,
        dirty=True,
        message=release_message("pulumi up", "localhost:5001/k8s-demo", "0.2", "dev"),
    )
    (found,) = numbered(entry)
    assert (found.image_tag, found.tag_source) == ("0.2", "app/VERSION, named in the message")


def test_the_message_of_make_up_is_the_change_cause(config: Callable[..., pulumi.Config]) -> None:
    settings = load_settings(config(imageTag="0.7"), project="k8s-demo", stack="dev", app_version="0.9")
    assert settings.change_cause == release_message("pulumi up", "k8s-demo", "0.7", "dev")
    assert tag_in_message(settings.change_cause) == "0.7"


@pytest.mark.parametrize("message", ["Release 0.2", "image k8s-demo:0.2", "image k8s-demo:has space, stack dev", ""])
def test_other_messages_name_no_tag(message: str) -> None:
    assert tag_in_message(message) is None


def test_the_marker_of_a_modified_work_tree_is_unknown() -> None:
    entry = update("10:01", tag="app/VERSION", commit=COMMIT, dirty=True)
    (found,) = releases([entry], committed("0.2"))
    assert (found.image_tag, found.tag_source) == (None, "app/VERSION of a modified work tree at 0123456")


def test_the_marker_at_an_unknown_commit_is_unknown() -> None:
    (found,) = numbered(update("10:01", tag="app/VERSION", commit=COMMIT))
    assert (found.image_tag, found.tag_source) == (None, "app/VERSION at 0123456, a commit not in this repository")


def test_the_marker_without_git_is_unknown() -> None:
    (found,) = numbered(update("10:01", tag="app/VERSION"))
    assert (found.image_tag, found.tag_source) == (None, "app/VERSION, and the update recorded no git commit")


# What runs now.


def test_the_newest_successful_release_is_running() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.2")]
    running = running_release(history, releases(history, no_git))
    assert running is not None
    assert running.number == 2


def test_nothing_is_running_after_a_failed_release() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.2-broken", result="failed")]
    assert running_release(history, releases(history, no_git)) is None


def test_nothing_is_running_after_a_destroy() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.1", kind="destroy")]
    assert running_release(history, releases(history, no_git)) is None


def test_a_refresh_does_not_stop_a_release_running() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.1", kind="refresh")]
    running = running_release(history, releases(history, no_git))
    assert running is not None
    assert running.image_tag == "0.1"


# The table.


def test_table_is_newest_first_with_every_column() -> None:
    found = numbered(
        update("10:01", tag="0.1", commit=COMMIT, message="First"),
        update("10:02", tag="0.2-broken", result="failed", commit=COMMIT, dirty=True, message="Second"),
    )
    assert table(found).splitlines() == [
        "RELEASE  TIME (UTC)           IMAGE TAG   RESULT     COMMIT         MESSAGE",
        "      2  2026-11-27 10:02:00  0.2-broken  failed     0123456-dirty  Second",
        "      1  2026-11-27 10:01:00  0.1         succeeded  0123456        First",
    ]


def test_table_explains_an_unknown_tag() -> None:
    found = numbered(update("10:01", tag="app/VERSION", commit=COMMIT, dirty=True))
    lines = table(found).splitlines()
    assert lines[1].split()[3] == "?"
    assert lines[-1] == (
        "? release 1: app/VERSION of a modified work tree at 0123456; deploy a tag by name (make rollback TO=<tag>)"
    )


def test_json_form_of_a_release() -> None:
    (found,) = numbered(update("10:01", tag="0.1", commit=COMMIT, message="First"))
    assert found.as_json() == {
        "release": 1,
        "time": "2026-11-27T10:01:00Z",
        "imageTag": "0.1",
        "recordedImageTag": "0.1",
        "imageDigest": "",
        "tagSource": "imageTag",
        "result": "succeeded",
        "commit": COMMIT,
        "dirty": False,
        "message": "First",
        "canary": None,
        "cause": "",
    }


# The cause of a failed release, recorded in the message of the automatic rollback after it.

CRASH = "CrashLoopBackOff (2 pods, exit code 1 (Error)): nginx: [emerg] unknown directive"
ROLLED_BACK = [
    update("10:01", tag="0.1"),
    update("10:02", tag="0.4-crash", result="failed"),
    update(
        "10:03",
        tag="0.1",
        message="automatic rollback to release 1 after release 2 (tag 0.4-crash) failed: image k8s-demo:0.1, "
        f"stack dev\n{cause_line(2, CRASH)}",
    ),
]


def test_a_failed_release_gets_the_cause_a_later_update_recorded() -> None:
    assert [r.cause for r in numbered(*ROLLED_BACK)] == ["", CRASH, ""]


def test_the_table_shows_one_line_of_cause_under_the_failed_release() -> None:
    lines = table(numbered(*ROLLED_BACK)).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "cause:", "1"]
    assert lines[3] == f"         cause: {CRASH}"


def test_the_rollbacks_message_keeps_its_first_line() -> None:
    assert numbered(*ROLLED_BACK)[2].message.endswith("image k8s-demo:0.1, stack dev")


def test_a_cause_line_is_one_line_whatever_the_cause_holds() -> None:
    assert (
        cause_line(7, "ErrImageNeverPull (1 pod):\n  image absent")
        == "release 7 failed: ErrImageNeverPull (1 pod): image absent"
    )


def test_a_succeeded_release_never_shows_a_cause() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.2", message=cause_line(1, CRASH))]
    assert numbered(*history)[0].cause == ""


# The rollback target and its refusals.

THREE = [update("10:01", tag="0.1"), update("10:02", tag="0.2-broken", result="failed"), update("10:03", tag="0.3")]


def target(value: str, history: Sequence[auto.UpdateSummary] = THREE) -> str:
    found = releases(history, no_git)
    return rollback_target(value, found, running_release(history, found)).tag


def test_a_release_number_means_its_tag() -> None:
    assert target("1") == "0.1"


def test_a_tag_means_itself() -> None:
    assert target("0.0.9") == "0.0.9"


@pytest.mark.parametrize("value", ["0", "4", "99"])
def test_a_release_that_does_not_exist_is_refused(value: str) -> None:
    with pytest.raises(Refusal, match=rf"^there is no release {value}: releases are 1 to 3 \(make history\)$"):
        target(value)


def test_a_number_on_a_stack_without_releases_is_refused() -> None:
    with pytest.raises(Refusal, match=r"^there is no release 1: the stack has no release yet"):
        target("1", [])


def test_a_failed_release_is_refused() -> None:
    with pytest.raises(Refusal, match=r"^release 2 \(tag 0\.2-broken\) failed: its tag never ran completely"):
        target("2")


def test_the_running_release_is_refused() -> None:
    with pytest.raises(Refusal, match=r"^tag 0\.3 is already running \(release 3\); nothing to roll back$"):
        target("3")


def test_the_running_tag_by_name_is_refused() -> None:
    with pytest.raises(Refusal, match=r"^tag 0\.3 is already running \(release 3\)"):
        target("0.3")


@pytest.mark.parametrize("value", ["has space", "-1", "v/1", "app/VERSION", ""])
def test_neither_number_nor_tag_is_refused_with_the_tag_rule(value: str) -> None:
    with pytest.raises(Refusal) as refused:
        target(value)
    assert str(refused.value) == (
        f"TO={value!r} is neither a release number (releases are 1 to 3) nor a valid tag ({TAG_RULE})"
    )


def test_latest_is_refused_as_settings_refuse_it() -> None:
    with pytest.raises(Refusal, match=r"nor a valid tag \('latest' is refused: name the version"):
        target("latest")


def test_a_release_with_an_unknown_tag_is_refused() -> None:
    history = [update("10:01", tag="app/VERSION", commit=COMMIT, dirty=True), update("10:02", tag="0.3")]
    with pytest.raises(Refusal, match=r"^the tag of release 1 cannot be known: app/VERSION of a modified work tree"):
        target("1", history)


# The automatic rollback's choice.


def test_auto_rollback_picks_the_last_successful_release() -> None:
    before = numbered(
        update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.3", result="failed")
    )
    decision = auto_rollback_target(before, "0.4-broken")
    assert decision.release is not None
    assert (decision.release.number, decision.release.image_tag) == (2, "0.2")


def test_auto_rollback_has_no_target_without_a_successful_release() -> None:
    before = numbered(update("10:01", tag="0.1", result="failed"))
    assert auto_rollback_target(before, "0.2-broken").why_not == "no earlier release succeeded"


def test_auto_rollback_never_redeploys_the_failed_tag() -> None:
    # The same tag failed after a config change: deploying it again would fail the same way, and could loop.
    before = numbered(update("10:01", tag="0.1"))
    decision = auto_rollback_target(before, "0.1")
    assert decision.release is None
    assert decision.why_not.startswith("release 1, the last that succeeded, runs the same tag 0.1")


def test_auto_rollback_takes_the_same_tag_at_another_digest() -> None:
    # A promotion of a rebuilt tag failed: the last good release ran that tag at its own digest.
    before = numbered(update("10:01", tag="0.1", digest=DIGEST))
    decision = auto_rollback_target(before, "0.1", "sha256:" + "99" * 32)
    assert decision.release is not None
    assert decision.release.recorded_digest == DIGEST


def test_auto_rollback_never_redeploys_the_failed_digest() -> None:
    before = numbered(update("10:01", tag="0.1", digest=DIGEST))
    assert auto_rollback_target(before, "0.1", DIGEST).release is None


def test_a_release_records_the_digest_its_update_pinned() -> None:
    (found,) = numbered(update("10:01", tag="0.1", digest=DIGEST))
    assert (found.recorded_digest, found.as_json()["imageDigest"]) == (DIGEST, DIGEST)


def test_rolling_back_to_the_running_tag_at_another_digest_is_allowed() -> None:
    found = numbered(update("10:01", tag="0.1", digest=DIGEST), update("10:02", tag="0.1", digest=""))
    target = rollback_target("1", found, found[-1])
    assert (target.tag, target.digest) == ("0.1", DIGEST)


def test_auto_rollback_has_no_target_when_the_last_good_tag_is_unknown() -> None:
    before = numbered(update("10:01", tag="app/VERSION", commit=COMMIT, dirty=True))
    decision = auto_rollback_target(before, "0.2-broken")
    assert decision.release is None
    assert decision.why_not.startswith("the tag of release 1, the last that succeeded, is unknown")


# Kubernetes' verdict on a failed rollout, from the Deployment's status.


def progressing(reason: str, message: str) -> dict[str, object]:
    """A Deployment status whose Progressing condition has ``reason`` and ``message``, beside Available."""
    return {
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "False", "reason": reason, "message": message},
        ]
    }


def test_the_verdict_is_the_progress_deadline_in_kubernetes_words() -> None:
    status = progressing(PROGRESS_DEADLINE, 'ReplicaSet "web-1" has timed out progressing.')
    assert str(rollout_failure(status, "timed out")) == (
        'ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out progressing.'
    )


def test_a_rollout_still_progressing_at_the_timeout_says_so() -> None:
    status = progressing("ReplicaSetUpdated", 'ReplicaSet "web-1" is progressing.')
    assert str(rollout_failure(status, "1 error occurred:\n* timed out waiting for the condition")) == (
        "ReplicaSetUpdated: the rollout did not complete within its timeout"
    )


def test_a_previous_rollouts_verdict_gives_way_to_the_engines_error() -> None:
    status = progressing("NewReplicaSetAvailable", 'ReplicaSet "web-1" has successfully progressed.')
    assert str(rollout_failure(status, "\n'web' timed out waiting to be Ready\nmore")) == (
        "'web' timed out waiting to be Ready"
    )


@pytest.mark.parametrize("status", [None, {}, {"conditions": [{"type": "Available", "reason": "x"}]}])
def test_without_a_progressing_condition_the_verdict_is_the_errors_first_line(
    status: dict[str, object] | None,
) -> None:
    failure = rollout_failure(status, "\n'k8s-demo-deployment' timed out waiting to be Ready\nmore")
    assert (failure.reason, str(failure)) == ("", "'k8s-demo-deployment' timed out waiting to be Ready")


def test_without_status_or_error_the_rollout_did_not_complete() -> None:
    assert str(rollout_failure(None)) == "the rollout did not complete"


# Why a push failed, from the engine's diagnostics on the image.

REGISTRY = "127.0.0.1:5000"
#: The diagnostic a read-only registry (distribution's maintenance mode) gives, as recorded in the sandbox.
READ_ONLY_PUSH = (
    "error reading push output: error parsing HTTP 405 response body: "
    "invalid character 'M' looking for beginning of value: \"Method not allowed\\n\"\n"
)


def test_a_bare_http_refusal_is_named_by_its_status_and_body() -> None:
    assert push_refusal([READ_ONLY_PUSH], REGISTRY) == PushRefusal(
        "HTTP 405 Method not allowed",
        "The registry refused it: it accepts no pushes, as when it is read-only (maintenance, garbage collection).",
    )


def test_the_registrys_own_denial_is_kept_and_explained() -> None:
    denied = "error reading push output: denied: requested access to the resource is denied"
    assert push_refusal([denied], REGISTRY) == PushRefusal(
        "denied: requested access to the resource is denied",
        "The registry refused it: these credentials may not push to this repository.",
    )


def test_missing_credentials_point_to_docker_login_for_the_registry() -> None:
    refused = push_refusal(["error reading push output: authentication is required"], REGISTRY)
    assert refused == PushRefusal(
        "authentication is required",
        "The registry refused it: it wants credentials; run `docker login 127.0.0.1:5000` first.",
    )


def test_an_unknown_push_error_is_given_without_a_hint() -> None:
    refused = push_refusal(["error reading push output: blob upload unknown\nmore"], REGISTRY)
    assert refused == PushRefusal("blob upload unknown", "")


def test_a_failed_build_is_not_a_failed_push() -> None:
    build = "error reading build output: executor failed running [/bin/sh -c exit 3]: exit code: 3"
    assert push_refusal([build], REGISTRY) is None


# Causes kept as stack tags (k8s-demo:cause-N).


def test_a_cause_fits_pulumis_256_byte_tag_value_cut_on_a_character() -> None:
    value = cause_tag_value("é" * 300)
    assert (len(value.encode("utf-8")), value.endswith("…"), value[:-1] == "é" * 126) == (255, True, True)


def test_a_short_cause_is_kept_on_one_line_as_it_is() -> None:
    assert (
        cause_tag_value("CrashLoopBackOff (1 pod):\n  last log line: x") == "CrashLoopBackOff (1 pod): last log line: x"
    )


def test_only_cause_tags_of_numbered_releases_are_read() -> None:
    tags = {"k8s-demo:cause-4": "a", "k8s-demo:cause-x": "b", "pulumi:project": "k8s-demo", "other:cause-5": "c"}
    assert causes_in_tags(tags) == {4: "a"}


def test_a_cause_in_a_later_message_wins_over_a_tag() -> None:
    history = [
        update("10:01", tag="0.1"),
        update("10:02", tag="0.2", result="failed"),
        update("10:03", tag="0.1", message="automatic rollback\nrelease 2 failed: from the message"),
    ]
    found = releases(history, no_git, {2: "from the tag"})
    assert [r.cause for r in found] == ["", "from the message", ""]

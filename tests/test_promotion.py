"""Promotion's rules: which release, which image, the refusals, the provenance in TO's message."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from ops.releases.model import Refusal, Release, release_message, releases, tag_in_message
from ops.releases.promotion import (
    DIGEST_KEY,
    PromotedImage,
    Provenance,
    check_stacks,
    choose_release,
    history_dir,
    image_of_release,
    plan_promotion,
    promoted_image_problem,
    promotion_message,
    provenance_in_message,
    recorded_resources,
    release_resources,
    rollbacks_after,
    stack_file_with,
    target_repository_problem,
)
from project import IMAGE_TYPE, STACK_TYPE
from tests.releases_fakes import no_git, update

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "sha256:" + "cd" * 32
REGISTRY_REPO = "127.0.0.1:5000/k8s-demo"


def numbered(*entries: auto.UpdateSummary) -> list[Release]:
    return releases(list(entries), no_git)


def no_tags(name: str) -> str | None:
    return None


def tagged(name: str) -> str | None:
    return {"v0.2": COMMIT}.get(name)


def stack_state(image: str, *builds: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A state's resources: the stack with its ``image`` output, and any docker builds."""
    return [
        {
            "type": STACK_TYPE,
            "urn": "urn:pulumi:dev::k8s-demo::pulumi:pulumi:Stack::k8s-demo-dev",
            "outputs": {"image": image},
        },
        *({"type": IMAGE_TYPE, "outputs": dict(build)} for build in builds),
    ]


# Choosing the release.


def test_without_rel_the_newest_release_that_succeeded_is_promoted() -> None:
    found = numbered(
        update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.3-broken", result="failed")
    )
    assert choose_release(found, "dev", None, no_tags).number == 2


def test_rel_picks_a_release_by_number() -> None:
    found = numbered(update("10:01", tag="0.1"), update("10:02", tag="0.2"))
    assert choose_release(found, "dev", "1", no_tags).image_tag == "0.1"


def test_a_git_tag_picks_the_newest_successful_release_at_its_commit() -> None:
    found = numbered(
        update("10:01", tag="0.1", commit=OTHER_COMMIT),
        update("10:02", tag="0.2", commit=COMMIT),
        update("10:03", tag="0.2", commit=COMMIT),
        update("10:04", tag="0.3", commit=OTHER_COMMIT),
    )
    assert choose_release(found, "dev", "v0.2", tagged).number == 3


def test_a_git_tag_skips_releases_from_a_modified_work_tree() -> None:
    found = numbered(update("10:01", tag="0.2", commit=COMMIT, dirty=True))
    with pytest.raises(Refusal, match=r"no release of dev ran git tag v0\.2 \(0123456\) from a clean work tree"):
        choose_release(found, "dev", "v0.2", tagged)


def test_a_value_that_is_neither_a_number_nor_a_git_tag_is_refused() -> None:
    found = numbered(update("10:01", tag="0.1"))
    with pytest.raises(Refusal, match=r"REL='v9' is neither a release number of dev \(1 to 1\) nor a git tag"):
        choose_release(found, "dev", "v9", no_tags)


def test_a_release_number_that_does_not_exist_is_refused() -> None:
    found = numbered(update("10:01", tag="0.1"), update("10:02", tag="0.2"))
    with pytest.raises(Refusal, match=r"there is no dev release 3: releases are 1 to 2"):
        choose_release(found, "dev", "3", no_tags)


def test_a_stack_without_releases_is_refused() -> None:
    with pytest.raises(Refusal, match=r"stack dev has no release yet"):
        choose_release([], "dev", None, no_tags)


def test_a_stack_whose_releases_all_failed_is_refused() -> None:
    found = numbered(update("10:01", tag="0.1", result="failed"))
    with pytest.raises(Refusal, match=r"no release of dev succeeded"):
        choose_release(found, "dev", None, no_tags)


def test_a_failed_release_is_refused() -> None:
    # A canary that is aborted records its release as failed, so this covers it too.
    found = numbered(update("10:01", tag="0.1"), update("10:02", tag="0.2-broken", result="failed"))
    with pytest.raises(Refusal, match=r"dev release 2 \(tag 0\.2-broken\) failed: it never ran completely"):
        choose_release(found, "dev", "2", no_tags)


def test_a_release_undone_by_make_rollback_is_refused() -> None:
    rollback = release_message("rollback to release 1", "k8s-demo", "0.1", "dev")
    found = numbered(
        update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.1", message=rollback)
    )
    with pytest.raises(
        Refusal, match=r"dev release 2 \(tag 0\.2\) was rolled back by release 3 \(rollback to release 1"
    ):
        choose_release(found, "dev", "2", no_tags)


def test_the_rollback_release_itself_is_the_newest_to_promote() -> None:
    rollback = release_message("rollback to tag", "k8s-demo", "0.1", "dev")
    found = numbered(
        update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.1", message=rollback)
    )
    assert choose_release(found, "dev", None, no_tags).number == 3


def test_a_rollback_undoes_the_release_that_was_running_not_a_failed_one_after_it() -> None:
    rollback = release_message("rollback to release 1", "k8s-demo", "0.1", "dev")
    found = numbered(
        update("10:01", tag="0.1"),
        update("10:02", tag="0.2"),
        update("10:03", tag="0.3-broken", result="failed"),
        update("10:04", tag="0.1", message=rollback),
    )
    assert {number: r.number for number, r in rollbacks_after(found).items()} == {2: 4}


def test_an_automatic_rollback_marks_nothing_else_rolled_back() -> None:
    automatic = release_message(
        "automatic rollback to release 1 after release 2 (tag 0.2) failed", "k8s-demo", "0.1", "dev"
    )
    found = numbered(
        update("10:01", tag="0.1"),
        update("10:02", tag="0.2", result="failed"),
        update("10:03", tag="0.1", message=automatic),
    )
    assert rollbacks_after(found) == {}
    assert choose_release(found, "dev", "1", no_tags).number == 1


# The image of the release, from the state its update left.


def test_a_pushed_release_is_promoted_by_its_digest() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    image = image_of_release(release, "dev", stack_state(f"{REGISTRY_REPO}@{DIGEST}"))
    assert image == PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    assert image.reference == f"{REGISTRY_REPO}@{DIGEST}"


def test_a_local_release_is_promoted_by_tag_and_the_image_id_it_built() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    state = stack_state("k8s-demo:0.2", {"imageName": "k8s-demo:0.2", "repoDigest": IMAGE_ID})
    image = image_of_release(release, "dev", state)
    assert image == PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID)
    assert image.describe() == f"k8s-demo:0.2 (image ID {IMAGE_ID})"


def test_a_local_release_that_built_nothing_is_refused() -> None:
    (release,) = numbered(update("10:01", tag="0.1"))
    with pytest.raises(Refusal, match=r"ran the local image k8s-demo:0\.1 without building it"):
        image_of_release(release, "dev", stack_state("k8s-demo:0.1"))


def test_a_registry_image_deployed_by_tag_is_refused() -> None:
    (release,) = numbered(update("10:01", tag="0.1"))
    with pytest.raises(Refusal, match=r"ran 127\.0\.0\.1:5000/k8s-demo:0\.1 by tag, not by digest"):
        image_of_release(release, "dev", stack_state(f"{REGISTRY_REPO}:0.1"))


def test_a_release_whose_state_is_unavailable_is_refused() -> None:
    (release,) = numbered(update("10:01", tag="0.1"))
    with pytest.raises(Refusal, match=r"the state dev release 1 left is not available from this backend"):
        image_of_release(release, "dev", None)


def test_a_release_whose_tag_is_unknown_is_refused() -> None:
    (release,) = numbered(update("10:01", tag="app/VERSION", commit=COMMIT, dirty=True))
    with pytest.raises(Refusal, match=r"the tag of dev release 1 cannot be known: app/VERSION of a modified work tree"):
        image_of_release(release, "dev", stack_state(f"{REGISTRY_REPO}@{DIGEST}"))


# The state an older release left, from a file backend's history.


def record(
    directory: Path, nanos: int, start: str, image: str, *, result: str = "succeeded", message: str = ""
) -> None:
    """One update as the file backend records it: its history entry and the copy of the state it left."""
    started = int(datetime.strptime(f"2026-11-27 {start}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp())
    info = {"kind": "update", "startTime": started, "message": message, "result": result, "config": {}}
    (directory / f"dev-{nanos}.history.json").write_text(json.dumps(info))
    checkpoint = {"version": 3, "checkpoint": {"stack": "dev", "latest": {"resources": stack_state(image)}}}
    (directory / f"dev-{nanos}.checkpoint.json").write_text(json.dumps(checkpoint))


def test_an_older_release_reads_the_state_its_own_update_left(tmp_path: Path) -> None:
    record(tmp_path, 1, "10:01", f"{REGISTRY_REPO}@sha256:{'01' * 32}", message="pulumi up: one")
    record(tmp_path, 2, "10:02", f"{REGISTRY_REPO}@{DIGEST}", message="pulumi up: two")
    record(tmp_path, 3, "10:03", f"{REGISTRY_REPO}@sha256:{'03' * 32}", message="pulumi up: three")
    found = numbered(
        update("10:01", tag="0.1", message="pulumi up: one"),
        update("10:02", tag="0.2", message="pulumi up: two"),
        update("10:03", tag="0.3", message="pulumi up: three"),
    )
    assert image_of_release(found[1], "dev", recorded_resources(tmp_path, found[1])).digest == DIGEST


def test_a_gzipped_history_is_read_too(tmp_path: Path) -> None:
    record(tmp_path, 1, "10:01", f"{REGISTRY_REPO}@{DIGEST}")
    for path in list(tmp_path.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    (release,) = numbered(update("10:01", tag="0.1"))
    assert image_of_release(release, "dev", recorded_resources(tmp_path, release)).digest == DIGEST


def test_a_release_the_history_does_not_hold_has_no_recorded_state(tmp_path: Path) -> None:
    record(tmp_path, 1, "10:01", f"{REGISTRY_REPO}@{DIGEST}")
    (release,) = numbered(update("10:05", tag="0.1"))
    assert recorded_resources(tmp_path, release) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/state", "/srv/state/.pulumi/history/dev"),
        ("file://~/state", str(Path.home() / "state" / ".pulumi" / "history" / "dev")),
        ("s3://bucket/k8s-demo", None),
        ("https://api.pulumi.com", None),
    ],
)
def test_only_a_file_backend_has_a_history_directory(url: str, expected: str | None) -> None:
    found = history_dir(url, "k8s-demo", "organization/k8s-demo/dev")
    assert (str(found) if found else None) == expected


def test_the_project_scoped_history_directory_is_preferred(tmp_path: Path) -> None:
    scoped = tmp_path / ".pulumi" / "history" / "k8s-demo" / "dev"
    scoped.mkdir(parents=True)
    assert history_dir(f"file://{tmp_path}", "k8s-demo", "dev") == scoped


def test_the_newest_update_reads_the_current_state_even_after_a_refresh() -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.1", kind="refresh")]
    (release,) = numbered(*history)
    current = stack_state(f"{REGISTRY_REPO}@{DIGEST}")
    assert release_resources(release, history, lambda: current, lambda _: None) == current


@pytest.mark.parametrize("kind", ["update", "destroy"])
def test_a_release_with_a_later_update_or_destroy_reads_its_recorded_state(kind: str) -> None:
    history = [update("10:01", tag="0.1"), update("10:02", tag="0.2", kind=kind)]
    release = numbered(*history)[0]
    recorded = stack_state(f"{REGISTRY_REPO}@{DIGEST}")
    found = release_resources(
        release, history, lambda: stack_state("other"), lambda r: recorded if r is release else None
    )
    assert found == recorded


# What TO can get.


def test_a_pushed_image_is_looked_up_by_digest_in_tos_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    def digest_problem(repository: str, digest: str) -> str | None:
        asked.append((repository, digest))
        return None

    monkeypatch.setattr("ops.releases.promotion.registry_digest_problem", digest_problem)
    image = PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    assert promoted_image_problem(image, "registry.example.com/k8s-demo/k8s-demo") is None
    assert asked == [("registry.example.com/k8s-demo/k8s-demo", DIGEST)]


def test_a_local_image_is_looked_up_by_tag_and_image_id(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str, str]] = []

    def id_problem(repository: str, tag: str, image_id: str) -> str | None:
        asked.append((repository, tag, image_id))
        return "rebuilt"

    monkeypatch.setattr("ops.releases.promotion.local_image_id_problem", id_problem)
    image = PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID)
    assert promoted_image_problem(image, "k8s-demo") == "rebuilt"
    assert asked == [("k8s-demo", "0.2", IMAGE_ID)]


# The stacks.


def test_from_and_to_the_same_stack_is_refused() -> None:
    with pytest.raises(Refusal, match=r"FROM and TO are both dev"):
        check_stacks("dev", "dev", ["dev", "prod"])


def test_a_to_stack_that_does_not_exist_is_refused() -> None:
    with pytest.raises(Refusal, match=r"TO=prd: there is no stack prd in this backend \(stacks: dev, prod\)"):
        check_stacks("dev", "prd", ["dev", "prod"])


def test_two_existing_stacks_are_accepted() -> None:
    check_stacks("dev", "prod", ["dev", "prod"])


@pytest.mark.parametrize(
    ("image", "target_repository", "problem"),
    [
        (PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST), "k8s-demo", "prod deploys local images"),
        (PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID), REGISTRY_REPO, "has no registry digest"),
        (PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID), "other", "another local repository"),
    ],
)
def test_a_target_that_cannot_run_the_image_is_refused(
    image: PromotedImage, target_repository: str, problem: str
) -> None:
    assert problem in (target_repository_problem(image, target_repository, "prod") or "")


def test_a_pushed_image_may_go_to_another_registry_which_the_command_checks() -> None:
    image = PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    assert target_repository_problem(image, "registry.example.com/k8s-demo/k8s-demo", "prod") is None


# The plan and the provenance.


def test_a_pushed_promotion_sets_the_tag_and_the_digest() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    image = PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    promotion = plan_promotion(
        source="dev", release=release, image=image, target="prod", target_repository=REGISTRY_REPO
    )
    assert dict(promotion.config) == {"imageTag": "0.2", DIGEST_KEY: DIGEST}
    assert promotion.reference == f"{REGISTRY_REPO}@{DIGEST}"


def test_a_promotion_names_its_provenance() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    image = PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    promotion = plan_promotion(
        source="dev", release=release, image=image, target="prod", target_repository=REGISTRY_REPO
    )
    assert promotion.provenance == f"promoted from dev release 1, {DIGEST}"
    assert promotion.message.startswith(promotion.provenance + ": ")


def test_a_local_promotion_sets_the_tag_and_clears_any_digest() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    image = PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID)
    promotion = plan_promotion(source="dev", release=release, image=image, target="prod", target_repository="k8s-demo")
    assert dict(promotion.config) == {"imageTag": "0.2", DIGEST_KEY: ""}


def test_a_promotion_that_the_target_cannot_run_is_refused() -> None:
    (release,) = numbered(update("10:01", tag="0.2"))
    image = PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID)
    with pytest.raises(Refusal, match="has no registry digest"):
        plan_promotion(source="dev", release=release, image=image, target="prod", target_repository=REGISTRY_REPO)


def test_the_message_records_where_the_image_came_from() -> None:
    image = PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST)
    assert promotion_message("dev", 7, image, REGISTRY_REPO, "prod") == (
        f"promoted from dev release 7, {DIGEST}: image {REGISTRY_REPO}:0.2, stack prod"
    )


def test_a_local_promotion_message_names_the_image_id() -> None:
    image = PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID)
    assert promotion_message("dev", 7, image, "k8s-demo", "prod") == (
        f"promoted from dev release 7, image ID {IMAGE_ID}: image k8s-demo:0.2, stack prod"
    )


@pytest.mark.parametrize(
    "image",
    [
        PromotedImage(repository=REGISTRY_REPO, tag="0.2", digest=DIGEST),
        PromotedImage(repository="k8s-demo", tag="0.2", image_id=IMAGE_ID),
    ],
)
def test_the_provenance_and_the_tag_read_back_from_the_message(image: PromotedImage) -> None:
    message = promotion_message("dev", 7, image, image.repository, "prod")
    assert provenance_in_message(message) == Provenance("dev", 7, image.identity)
    assert tag_in_message(message) == "0.2"


def test_other_messages_carry_no_provenance() -> None:
    assert provenance_in_message(release_message("pulumi up", "k8s-demo", "0.2", "dev")) is None


# The preview's copy of TO's config file.


def test_the_previews_config_file_sets_the_promoted_keys_and_keeps_the_rest() -> None:
    document: dict[str, Any] = {
        "encryptionsalt": "v1:abc",
        "config": {"k8s-demo:replicas": 4, "k8s-demo:imageTag": "0.1"},
    }
    assert stack_file_with(document, {"imageTag": "0.2", "imageDigest": DIGEST}) == {
        "encryptionsalt": "v1:abc",
        "config": {"k8s-demo:replicas": 4, "k8s-demo:imageTag": "0.2", "k8s-demo:imageDigest": DIGEST},
    }
    assert document["config"]["k8s-demo:imageTag"] == "0.1"


def test_a_stack_without_a_file_gets_one_with_the_promoted_keys() -> None:
    assert stack_file_with(None, {"imageTag": "0.2"}) == {"config": {"k8s-demo:imageTag": "0.2"}}

"""``make promote`` against fake stacks: what it deploys, what it records, and that each refusal changes nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ops import engine
from ops.diagnosis import PROGRESS_DEADLINE
from ops.releases.__main__ import main
from ops.releases.command import UpOutcome, history_command, rollback_command
from ops.releases.model import Refusal, RolloutFailure, release_message
from ops.releases.promote import PromoteResult, print_promote, promote
from ops.releases.promotion import DIGEST_KEY, PromotedImage
from project import IMAGE_TYPE, STACK_TYPE, config_key
from tests.examples import example_config
from tests.releases_fakes import FakeStack, update

APP_VERSION = "0.9"
REGISTRY = "127.0.0.1:5000/k8s-demo"
DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "01" * 32
IMAGE_ID = "sha256:" + "cd" * 32
OK = UpOutcome(True, {"update": 1, "same": 6})
ROLLOUT_FAILED = UpOutcome(False, rollout=RolloutFailure(PROGRESS_DEADLINE, "timed out"))


def state(image: str, *builds: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        {"type": STACK_TYPE, "outputs": {"image": image}},
        *({"type": IMAGE_TYPE, "outputs": dict(build)} for build in builds),
    ]


def dev(*, pushed: bool = True) -> FakeStack:
    """dev: release 1 of 0.1, release 2 of 0.2 (the newest), release 3 failed; pushing to REGISTRY, or local."""
    repository = REGISTRY if pushed else "k8s-demo"
    values = {**example_config("dev"), config_key("imageRepository"): repository}
    newest = (
        state(f"{REGISTRY}@{DIGEST}")
        if pushed
        else state("k8s-demo:0.2", {"imageName": "k8s-demo:0.2", "repoDigest": IMAGE_ID})
    )
    return FakeStack(
        [update("10:01", tag="0.1"), update("10:02", tag="0.2"), update("10:03", tag="0.3-broken", result="failed")],
        values=values,
        name="dev",
        state=newest,
        recorded={1: state(f"{REGISTRY}@{OLD_DIGEST}"), 2: newest},
    )


def prod(*outcomes: UpOutcome, repository: str = REGISTRY) -> FakeStack:
    values = {**example_config("prod"), config_key("imageRepository"): repository}
    return FakeStack([update("09:00", tag="0.1")], list(outcomes), values=values, name="prod")


def has_it(image: PromotedImage, repository: str) -> str | None:
    return None


def run(source: FakeStack, target: FakeStack, value: str | None = None, **options: Any) -> PromoteResult:  # noqa: ANN401
    settings: dict[str, Any] = {"check": has_it, "preview_only": False, "confirm": None, **options}
    return promote(
        source,
        target,
        value,
        app_version=APP_VERSION,
        app_version_at=lambda commit: None,
        tag_commit=lambda name: None,
        announce=lambda text: None,
        **settings,
    )


def test_promote_deploys_the_digest_of_froms_newest_good_release() -> None:
    target = prod(OK)
    run(dev(), target)
    assert target.calls == ["set imageTag=0.2", f"set {DIGEST_KEY}={DIGEST}", "up"]


def test_promote_records_the_provenance_as_the_message() -> None:
    target = prod(OK)
    run(dev(), target)
    assert target.messages == [f"promoted from dev release 2, {DIGEST}: image {REGISTRY}:0.2, stack prod"]


def test_rel_promotes_an_older_release_from_its_recorded_state() -> None:
    target = prod(OK)
    run(dev(), target, "1")
    assert target.calls == ["set imageTag=0.1", f"set {DIGEST_KEY}={OLD_DIGEST}", "up"]


def test_a_local_image_is_promoted_by_tag_with_no_digest() -> None:
    target = prod(OK, repository="k8s-demo")
    run(dev(pushed=False), target)
    assert target.calls == ["set imageTag=0.2", f"set {DIGEST_KEY}=", "up"]
    assert target.messages == [f"promoted from dev release 2, image ID {IMAGE_ID}: image k8s-demo:0.2, stack prod"]


def test_the_image_check_gets_the_image_and_tos_repository() -> None:
    asked: list[tuple[PromotedImage, str]] = []

    def check(image: PromotedImage, repository: str) -> str | None:
        asked.append((image, repository))
        return None

    run(dev(), prod(OK, repository="registry.example.com/k8s-demo/k8s-demo"), check=check)
    assert asked == [
        (PromotedImage(repository=REGISTRY, tag="0.2", digest=DIGEST), "registry.example.com/k8s-demo/k8s-demo")
    ]


def test_preview_mode_previews_with_the_promoted_config_and_changes_nothing() -> None:
    target = prod()
    before = dict(target.values)
    result = run(dev(), target, preview_only=True)
    assert target.calls == [f"preview with imageTag=0.2, {DIGEST_KEY}={DIGEST}"]
    assert target.values == before
    assert result.update is None


@pytest.mark.parametrize(
    ("value", "check", "refusal"),
    [
        ("3", has_it, "dev release 3 (tag 0.3-broken) failed"),
        ("9", has_it, "there is no dev release 9"),
        (None, lambda image, repository: f"{image.reference} is not in the registry", "is not in the registry"),
    ],
)
def test_each_refusal_changes_nothing(value: str | None, check: Any, refusal: str) -> None:  # noqa: ANN401
    target = prod(OK)
    before = dict(target.values)
    with pytest.raises(Refusal, match=re.escape(refusal)):
        run(dev(), target, value, check=check)
    assert (target.calls, target.values) == ([], before)


def test_a_local_image_for_a_pushing_stack_is_refused_and_changes_nothing() -> None:
    target = prod(OK)
    with pytest.raises(Refusal, match="has no registry digest"):
        run(dev(pushed=False), target)
    assert target.calls == []


def test_a_declined_promotion_puts_tos_config_back() -> None:
    target = prod()
    before = dict(target.values)
    result = run(dev(), target, confirm=lambda: False)
    assert target.values == before
    assert target.calls[-2:] == [f"set imageTag={before[config_key('imageTag')]}", f"set {DIGEST_KEY}="]
    assert result.update is not None
    assert result.update.declined


def test_a_failed_promotion_rolls_tos_image_back_as_make_up_does() -> None:
    target = prod(ROLLOUT_FAILED, OK)
    run(dev(), target)
    assert target.calls[-4:] == ["up", "set imageTag=0.1", f"set {DIGEST_KEY}=", "up"]


def test_a_successful_promotion_says_what_prod_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_promote(run(dev(), prod(OK))) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"Promoted dev release 2 to prod: prod runs {REGISTRY}@{DIGEST}."
    )


def test_a_preview_says_nothing_changed(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_promote(run(dev(), prod(), preview_only=True)) == 0
    assert capsys.readouterr().out.startswith("Preview only: nothing was changed.")


def test_a_failed_preview_exits_1() -> None:
    target = prod()
    target.preview_report = engine.Report(command_failed=True)
    assert print_promote(run(dev(), target, preview_only=True)) == 1


# What prod does with a promoted release afterwards: history, rollback, automatic rollback.


def promoted_prod(*outcomes: UpOutcome) -> FakeStack:
    """prod: release 1 promoted 0.1 at OLD_DIGEST, release 2 promoted 0.2 at DIGEST (running)."""
    first = release_message(f"promoted from dev release 1, {OLD_DIGEST}", REGISTRY, "0.1", "prod")
    second = release_message(f"promoted from dev release 2, {DIGEST}", REGISTRY, "0.2", "prod")
    values = {
        **example_config("prod"),
        config_key("imageRepository"): REGISTRY,
        config_key("imageTag"): "0.2",
        config_key(DIGEST_KEY): DIGEST,
    }
    return FakeStack(
        [
            update("09:01", tag="0.1", digest=OLD_DIGEST, message=first),
            update("09:02", tag="0.2", digest=DIGEST, message=second),
        ],
        list(outcomes),
        values=values,
        name="prod",
    )


def test_history_shows_where_a_promoted_release_came_from(capsys: pytest.CaptureFixture[str]) -> None:
    history_command(promoted_prod(), lambda commit: None, as_json=False)
    assert f"promoted from dev release 2, {DIGEST}: image {REGISTRY}:0.2, stack prod" in capsys.readouterr().out


def test_rollback_to_a_promoted_release_deploys_its_digest_again() -> None:
    target = promoted_prod(OK)
    rollback_command(target, "1", app_version=APP_VERSION, app_version_at=lambda commit: None, check=None)
    assert target.calls == ["set imageTag=0.1", f"set {DIGEST_KEY}={OLD_DIGEST}", "up"]


def test_rollback_by_tag_drops_the_pinned_digest() -> None:
    target = promoted_prod(OK)
    rollback_command(target, "0.1", app_version=APP_VERSION, app_version_at=lambda commit: None, check=None)
    assert target.calls == ["set imageTag=0.1", f"set {DIGEST_KEY}=", "up"]


def test_a_failed_promotion_of_the_same_tag_with_another_digest_is_rolled_back() -> None:
    # dev rebuilt 0.2: same tag, new digest. prod's last good release ran 0.2 at DIGEST.
    rebuilt = "sha256:" + "99" * 32
    source = dev()
    source.state = state(f"{REGISTRY}@{rebuilt}")
    target = promoted_prod(ROLLOUT_FAILED, OK)
    run(source, target)
    assert target.calls[-3:] == ["set imageTag=0.2", f"set {DIGEST_KEY}={DIGEST}", "up"]


# The preview's comment and the command line.


def test_the_preview_comment_names_where_the_image_comes_from(tmp_path: Path) -> None:
    out = tmp_path / "plan.md"
    assert print_promote(run(dev(), prod(), preview_only=True), out=out, app_version=APP_VERSION) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!-- k8s-demo-preview:prod -->\n## Preview of stack `prod`")
    assert f"promoted from dev release 2, {DIGEST}; nothing is built" in text


@pytest.mark.parametrize(
    ("argv", "refusal"),
    [
        (["--from", "dev", "--to", "dev"], "FROM and TO are both dev"),
        (["--from", "dev", "--to", "prd"], "TO=prd: there is no stack prd in this backend (stacks: dev, prod)"),
        (["--from", "dev", "--to", "prod", "--out", "x.md"], "--out writes the preview's comment"),
    ],
)
def test_the_command_line_refuses_before_opening_a_stack(
    argv: list[str], refusal: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engine, "stack_names", lambda: ["dev", "prod"])
    monkeypatch.setattr(engine, "open_stack", lambda *args, **kwargs: pytest.fail("a stack was opened"))
    assert main(["promote", *argv, "--yes"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {refusal}")
    assert error.endswith("\nNothing was changed.\n")

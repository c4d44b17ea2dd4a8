"""Whether a tag exists where the cluster pulls it: the registry API v2 and the local Docker engine, faked."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ops.image_check import (
    MANIFEST_TYPES,
    Credentials,
    check_image,
    docker_credentials,
    local_image_id_problem,
    local_tag_problem,
    registry_digest_problem,
    registry_tag_problem,
)

REPO = "registry.example.com/team/k8s-demo"
MANIFEST_URL = "https://registry.example.com/v2/team/k8s-demo/manifests/0.1"
DIGEST = "sha256:" + "ab" * 32
IMAGE_ID = "sha256:" + "cd" * 32
BEARER = (
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/k8s-demo:pull"'
)


class Registry:
    """A registry that answers from a script and records every request."""

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, url, headers))
        return self.answers.pop(0)


def anonymous(host: str) -> Credentials | None:
    return None


def alice(host: str) -> Credentials | None:
    return Credentials("alice", "secret")


def test_a_tag_in_an_open_registry_exists() -> None:
    registry = Registry((200, {}, b""))
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=anonymous) is None
    assert registry.requests == [("HEAD", MANIFEST_URL, {"Accept": MANIFEST_TYPES})]


def test_a_missing_tag_is_named_with_the_registry() -> None:
    registry = Registry((404, {}, b""))
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=anonymous) == (
        f"{REPO}:0.1 is not in the registry registry.example.com: push it first, or choose a tag that is there"
    )


def test_a_bearer_challenge_gets_a_token_with_dockers_credentials() -> None:
    registry = Registry((401, {"WWW-Authenticate": BEARER}, b""), (200, {}, b'{"token": "t0k"}'), (200, {}, b""))
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=alice) is None
    token_request, retry = registry.requests[1:]
    assert token_request == (
        "GET",
        "https://auth.example.com/token?service=registry.example.com&scope=repository%3Ateam%2Fk8s-demo%3Apull",
        {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()},
    )
    assert retry[2]["Authorization"] == "Bearer t0k"


def test_a_bearer_challenge_without_credentials_asks_anonymously() -> None:
    registry = Registry(
        (401, {"www-authenticate": BEARER}, b""), (200, {}, b'{"access_token": "anon"}'), (200, {}, b"")
    )
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=anonymous) is None
    assert registry.requests[1][2] == {}


def test_a_basic_challenge_without_credentials_says_docker_login() -> None:
    registry = Registry((401, {"WWW-Authenticate": 'Basic realm="r"'}, b""))
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=anonymous) == (
        f"{REPO}:0.1: the registry registry.example.com wants credentials and Docker has none for it "
        "(docker login registry.example.com)"
    )


def test_refused_credentials_are_reported() -> None:
    registry = Registry((401, {"WWW-Authenticate": 'Basic realm="r"'}, b""), (403, {}, b""))
    assert registry_tag_problem(REPO, "0.1", http=registry, credentials=alice) == (
        f"{REPO}:0.1: the registry registry.example.com refused Docker's credentials "
        "(HTTP 403; docker login registry.example.com)"
    )


def test_an_unreachable_registry_is_reported() -> None:
    def down(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        raise OSError("connection refused")

    assert registry_tag_problem(REPO, "0.1", http=down, credentials=anonymous) == (
        f"{REPO}:0.1: could not reach the registry registry.example.com (connection refused)"
    )


@pytest.mark.parametrize(
    ("repository", "url"),
    [
        ("localhost:5001/k8s-demo", "http://localhost:5001/v2/k8s-demo/manifests/0.1"),
        ("docker.io/k8s-demo", "https://registry-1.docker.io/v2/library/k8s-demo/manifests/0.1"),
        ("docker.io/team/k8s-demo", "https://registry-1.docker.io/v2/team/k8s-demo/manifests/0.1"),
    ],
)
def test_registry_urls(repository: str, url: str) -> None:
    registry = Registry((200, {}, b""))
    registry_tag_problem(repository, "0.1", http=registry, credentials=anonymous)
    assert registry.requests[0][1] == url


def test_docker_credentials_come_from_auths(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:s3:cret").decode()
    config.write_text(json.dumps({"auths": {"registry.example.com": {"auth": auth}}}))
    assert docker_credentials("registry.example.com", config) == Credentials("alice", "s3:cret")


def test_no_docker_config_means_no_credentials(tmp_path: Path) -> None:
    assert docker_credentials("registry.example.com", tmp_path / "absent.json") is None


def test_a_local_tag_exists_when_docker_inspects_it() -> None:
    ran: list[list[str]] = []

    def run(command: list[str]) -> tuple[int, str]:
        ran.append(command)
        return 0, ""

    assert local_tag_problem("k8s-demo", "0.1", run=run) is None
    assert ran == [["docker", "image", "inspect", "--format", "{{.Id}}", "k8s-demo:0.1"]]


def test_a_missing_local_tag_names_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")

    def run(command: list[str]) -> tuple[int, str]:
        return 1, "Error response from daemon: No such image: k8s-demo:0.1\n"

    assert local_tag_problem("k8s-demo", "0.1", run=run) == (
        "k8s-demo:0.1 is not an image in tcp://10.0.0.5:2375 (Error response from daemon: No such image: "
        "k8s-demo:0.1): build it, or choose a tag that is there"
    )


def test_an_unreachable_engine_is_not_a_missing_image(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without DOCKER_HOST (a runner may have one set), the message names the default engine.
    monkeypatch.delenv("DOCKER_HOST", raising=False)

    def run(command: list[str]) -> tuple[int, str]:
        return 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"

    assert local_tag_problem("k8s-demo", "0.1", run=run) == (
        "k8s-demo:0.1: cannot check the default Docker engine (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?); ARGS=--no-image-check skips the check"
    )


def test_no_docker_cli_is_reported() -> None:
    def run(command: list[str]) -> tuple[int, str]:
        raise FileNotFoundError(command[0])

    assert local_tag_problem("k8s-demo", "0.1", run=run) == (
        "k8s-demo:0.1: cannot check the local Docker engine: no docker CLI on PATH (ARGS=--no-image-check skips it)"
    )


# Promotion: a manifest by digest, and a local tag's image ID.


def test_a_digest_in_the_registry_is_asked_for_by_digest() -> None:
    registry = Registry((200, {}, b""))
    assert registry_digest_problem(REPO, DIGEST, http=registry, credentials=anonymous) is None
    assert registry.requests == [
        ("HEAD", f"https://registry.example.com/v2/team/k8s-demo/manifests/{DIGEST}", {"Accept": MANIFEST_TYPES})
    ]


def test_a_digest_missing_from_the_registry_says_to_copy_it() -> None:
    registry = Registry((404, {}, b""))
    assert registry_digest_problem(REPO, DIGEST, http=registry, credentials=anonymous) == (
        f"{REPO}@{DIGEST} is not in the registry registry.example.com: copy that digest there first "
        "(for example `crane copy` or `skopeo copy`), or promote to a stack that pulls from where it is"
    )


def test_a_digest_behind_a_bearer_challenge_is_asked_for_with_the_token() -> None:
    registry = Registry((401, {"WWW-Authenticate": BEARER}, b""), (200, {}, b'{"token": "t0k"}'), (404, {}, b""))
    problem = registry_digest_problem(REPO, DIGEST, http=registry, credentials=alice)
    assert registry.requests[2][2]["Authorization"] == "Bearer t0k"
    assert problem is not None
    assert problem.startswith(f"{REPO}@{DIGEST} is not in the registry")


def test_a_local_tag_naming_the_released_image_id_passes() -> None:
    def run(command: list[str]) -> tuple[int, str, str]:
        return 0, f"{IMAGE_ID}\n", ""

    assert local_image_id_problem("k8s-demo", "0.2", IMAGE_ID, run=run) is None


def test_a_local_tag_rebuilt_since_the_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    other = "sha256:" + "ef" * 32

    def run(command: list[str]) -> tuple[int, str, str]:
        return 0, f"{other}\n", ""

    assert local_image_id_problem("k8s-demo", "0.2", IMAGE_ID, run=run) == (
        f"k8s-demo:0.2 in the default Docker engine is image {other}, not {IMAGE_ID}, the image the release ran: "
        "the tag was rebuilt since; promote a release of the image the tag names now, or build it again"
    )


def test_a_local_tag_that_is_gone_is_reported_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)

    def run(command: list[str]) -> tuple[int, str, str]:
        return 1, "", "Error response from daemon: No such image: k8s-demo:0.2\n"

    problem = local_image_id_problem("k8s-demo", "0.2", IMAGE_ID, run=run)
    assert problem == (
        "k8s-demo:0.2 is not an image in the default Docker engine (Error response from daemon: No such image: "
        "k8s-demo:0.2): build it, or choose a tag that is there"
    )


def test_check_image_asks_a_registry_for_a_digest_by_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr("ops.image_check.registry_digest_problem", lambda repo, digest: asked.append((repo, digest)))
    check_image(REPO, DIGEST)
    assert asked == [(REPO, DIGEST)]

"""Does an image exist where the cluster will pull it from? Checked before a rollback or promotion changes anything.

- A repository with a registry host (``registry.example.com/team/k8s-demo``):
  the registry HTTP API v2, ``HEAD /v2/<name>/manifests/<tag or digest>``, with Docker's
  credentials for that host if there are any (``~/.docker/config.json``: an
  ``auths`` entry, or a ``credHelpers``/``credsStore`` helper), following the
  registry's ``WWW-Authenticate`` challenge (Bearer token or Basic).
- A local repository (``k8s-demo``): ``docker image inspect <repo>:<tag>``,
  through the docker CLI, which honours ``DOCKER_HOST`` and Docker contexts;
  for a promotion also that the tag still names the image ID the release built.

Each check returns None when the tag exists, else the problem in one sentence.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.values import registry_host

#: (repository, tag) -> None when the tag exists, else what is wrong. Injected in tests.
ImageCheck = Callable[[str, str], str | None]

#: Seconds to wait for a registry or the docker CLI.
TIMEOUT_SECONDS = 30
#: Every manifest type a tag may name: OCI and Docker, single-platform and multi-platform.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# Docker Hub's names: its API host differs from the name users write, and one-part names live in library/.
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
# key="value" pairs of a WWW-Authenticate challenge (RFC 7235 auth-params, quoted form as registries send).
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')

#: (method, url, headers) -> (HTTP status, response headers, body). Injected in tests.
Http = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]


def urllib_http(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry."""

    username: str
    password: str

    def basic(self) -> str:
        """The ``Authorization`` header value for HTTP Basic."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, by default ``~/.docker/config.json``, as the docker CLI reads it."""
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def docker_credentials(host: str, config_path: Path | None = None) -> Credentials | None:
    """Docker's stored credentials for ``host`` (what ``docker login`` saved), or None.

    A credential helper named in ``credHelpers`` (for this host) or
    ``credsStore`` is asked through its documented protocol
    (``docker-credential-<name> get``); otherwise an ``auths`` entry's ``auth``.
    """
    path = config_path or docker_config_path()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key = _DOCKER_HUB_AUTH_KEY if host in _DOCKER_HUB else host
    helper = (config.get("credHelpers") or {}).get(key) or config.get("credsStore")
    if helper:
        return _from_helper(str(helper), key)
    entry = (config.get("auths") or {}).get(key) or {}
    encoded = entry.get("auth")
    if not encoded:
        return None
    username, _, password = base64.b64decode(encoded).decode().partition(":")
    return Credentials(username, password)


def _from_helper(helper: str, key: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return None
    result = subprocess.run(
        [program, "get"], input=key, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        return None
    answer = json.loads(result.stdout)
    return Credentials(str(answer.get("Username", "")), str(answer.get("Secret", "")))


def _api_base(host: str) -> str:
    """The registry's API root; plain HTTP only for a registry on this machine, as Docker allows."""
    if host in _DOCKER_HUB:
        return f"https://{_DOCKER_HUB_API}"
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    scheme = "http" if hostname in ("localhost", "127.0.0.1", "[::1]") else "https"
    return f"{scheme}://{host}"


def _repository_name(host: str, repository: str) -> str:
    name = repository[len(host) + 1 :]
    return f"library/{name}" if host in _DOCKER_HUB and "/" not in name else name


def registry_tag_problem(
    repository: str,
    tag: str,
    *,
    http: Http = urllib_http,
    credentials: Callable[[str], Credentials | None] = docker_credentials,
) -> str | None:
    """None when ``repository:tag`` exists in its registry (``HEAD /v2/<name>/manifests/<tag>``), else why not."""
    return _manifest_problem(repository, tag, http=http, credentials=credentials)


def registry_digest_problem(
    repository: str,
    digest: str,
    *,
    http: Http = urllib_http,
    credentials: Callable[[str], Credentials | None] = docker_credentials,
) -> str | None:
    """None when the manifest ``digest`` (``sha256:…``) is in ``repository``'s registry, else why not.

    ``HEAD /v2/<name>/manifests/<digest>``: a registry answers 200 only for a
    manifest it holds under that repository, whatever its tags say now.
    """
    return _manifest_problem(repository, digest, http=http, credentials=credentials)


def _manifest_problem(
    repository: str,
    reference: str,
    *,
    http: Http,
    credentials: Callable[[str], Credentials | None],
) -> str | None:
    """HEAD the manifest ``reference`` (a tag, or a ``sha256:`` digest) of ``repository``; None when it is there."""
    host = registry_host(repository)
    if host is None:
        raise ValueError(f"{repository!r} names no registry host")
    name = _repository_name(host, repository)
    by_digest = reference.startswith("sha256:")
    # A digest keeps its colon, as the distribution spec writes it; a tag has none to escape.
    url = f"{_api_base(host)}/v2/{name}/manifests/{urllib.parse.quote(reference, safe=':' if by_digest else '')}"
    image = f"{repository}@{reference}" if by_digest else f"{repository}:{reference}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        status, response_headers, _ = http("HEAD", url, headers)
        if status == 401:
            authorization = _authorize(response_headers, host, http, credentials)
            if authorization is None:
                return (
                    f"{image}: the registry {host} wants credentials and Docker has none for it (docker login {host})"
                )
            status, _, _ = http("HEAD", url, {**headers, "Authorization": authorization})
    except OSError as error:
        return f"{image}: could not reach the registry {host} ({error})"
    return _status_problem(status, image, host, by_digest=by_digest)


def _status_problem(status: int, image: str, host: str, *, by_digest: bool) -> str | None:
    """What the registry's answer to a manifest HEAD means; None when it holds the manifest."""
    if status == 200:
        return None
    if status == 404 and by_digest:
        return (
            f"{image} is not in the registry {host}: copy that digest there first "
            "(for example `crane copy` or `skopeo copy`), or promote to a stack that pulls from where it is"
        )
    if status == 404:
        return f"{image} is not in the registry {host}: push it first, or choose a tag that is there"
    if status in (401, 403):
        return f"{image}: the registry {host} refused Docker's credentials (HTTP {status}; docker login {host})"
    return f"{image}: the registry {host} answered HTTP {status}"


def _challenge(headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a ``WWW-Authenticate`` header (header names are case-insensitive)."""
    value = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    scheme, _, params = value.partition(" ")
    return scheme.lower(), dict(_AUTH_PARAM.findall(params))


def _authorize(
    headers: dict[str, str], host: str, http: Http, credentials: Callable[[str], Credentials | None]
) -> str | None:
    """The ``Authorization`` header that answers the registry's challenge, or None when it cannot be answered."""
    scheme, params = _challenge(headers)
    stored = credentials(host)
    if scheme == "basic":
        return stored.basic() if stored else None
    if scheme != "bearer" or "realm" not in params:
        return None
    # The token service: anonymous when Docker has no credentials (public repositories allow it).
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    token_headers = {"Authorization": stored.basic()} if stored else {}
    status, _, body = http("GET", f"{params['realm']}?{query}", token_headers)
    if status != 200:
        return None
    answer = json.loads(body)
    token = answer.get("token") or answer.get("access_token")
    return f"Bearer {token}" if token else None


#: What the Docker engine answers for an image it does not have.
NO_SUCH_IMAGE = "No such image"
#: Runs a command, returning (exit status, stderr). Injected in tests.
Run = Callable[[list[str]], tuple[int, str]]
#: Runs a command, returning (exit status, stdout, stderr). Injected in tests.
RunOutput = Callable[[list[str]], tuple[int, str, str]]


def _run_output(command: list[str]) -> tuple[int, str, str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    return result.returncode, result.stdout, result.stderr


def _run(command: list[str]) -> tuple[int, str]:
    status, _, stderr = _run_output(command)
    return status, stderr


def local_tag_problem(repository: str, tag: str, *, run: Run = _run) -> str | None:
    """None when ``repository:tag`` is in the local Docker engine (``docker image inspect``), else why not."""
    reference = f"{repository}:{tag}"
    try:
        status, stderr = run(_inspect(reference))
    except FileNotFoundError:
        return (
            f"{reference}: cannot check the local Docker engine: no docker CLI on PATH (ARGS=--no-image-check skips it)"
        )
    if status == 0:
        return None
    engine = os.environ.get("DOCKER_HOST", "the default Docker engine")
    detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {status}"
    if NO_SUCH_IMAGE not in stderr:
        # Not an answer about the image: the engine is unreachable, or the CLI failed otherwise.
        return f"{reference}: cannot check {engine} ({detail}); ARGS=--no-image-check skips the check"
    return f"{reference} is not an image in {engine} ({detail}): build it, or choose a tag that is there"


def _inspect(reference: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", reference]


def local_image_id_problem(repository: str, tag: str, image_id: str, *, run: RunOutput = _run_output) -> str | None:
    """None when ``repository:tag`` in the local Docker engine is the image ``image_id``, else why not.

    A local tag can be rebuilt; only the image ID says it is still the image a release ran.
    """
    reference = f"{repository}:{tag}"
    try:
        status, stdout, stderr = run(_inspect(reference))
    except FileNotFoundError:
        return f"{reference}: cannot check the local Docker engine: no docker CLI on PATH"
    if status != 0:
        return local_tag_problem(repository, tag, run=lambda _: (status, stderr))
    found = stdout.strip()
    if found != image_id:
        engine = os.environ.get("DOCKER_HOST", "the default Docker engine")
        return (
            f"{reference} in {engine} is image {found}, not {image_id}, the image the release ran: "
            "the tag was rebuilt since; promote a release of the image the tag names now, or build it again"
        )
    return None


def check_image(repository: str, reference: str) -> str | None:
    """The check for this repository: its registry when it names one, else the local Docker engine.

    ``reference`` is a tag, or a manifest digest (``sha256:…``), which only a registry holds.
    """
    if registry_host(repository) is not None:
        if reference.startswith("sha256:"):
            return registry_digest_problem(repository, reference)
        return registry_tag_problem(repository, reference)
    return local_tag_problem(repository, reference)

"""The pre-flight of ``make up``, ``make preview`` and ``make rollback``: what they need, checked first.

It runs before anything slow (the venv's install) and before anything that
changes state (backend login, stack selection, the update), within a few
seconds, and says for each problem what is missing and the ways forward:

- ``python``: Python 3.11 or newer;
- ``pulumi``: the Pulumi CLI on PATH, at the version the project is tested with
  (the SDK pin in requirements.txt, which the sandbox builds the CLI at) or a
  newer 3.x;
- ``kubeconfig``: the context the stack will use, found as the Kubernetes
  provider finds it: ``kubernetes:kubeconfig`` (a path or the file's content)
  and ``kubernetes:context`` in the stack's config, else ``KUBECONFIG``, else
  ``~/.kube/config`` and its current context;
- ``api-server``: that context's API server answers ``GET /readyz`` (any
  answer counts, 401 and 403 too: the credentials are the provider's to use);
- ``docker``: when this update builds the image (``imageTag`` is the app's
  version), a Docker engine answers where the Docker provider will look
  (``docker:host``, ``DOCKER_HOST``, the current Docker context, the default
  socket);
- ``image``: when it builds a local image (no registry host), that the cluster
  can run it: docker-desktop and the sandbox run on the same engine, a kind
  cluster gets it with ``kind load docker-image`` (run by ``make up`` when
  ``kind`` is on PATH), minikube needs its own engine (``minikube docker-env``),
  and any other cluster a registry.

Two stages, so that the first needs nothing but the interpreter:
``python -m ops.preflight host`` (Python, the Pulumi CLI) runs with the system
``python3`` before the venv exists, so it uses the standard library only and
parses on Python 3.8, to tell an older Python what it needs rather than fail
on a syntax error; ``python -m ops.preflight check`` (everything) runs with the
venv's Python, which has PyYAML for the kubeconfig and the stack files.

Each check is a function of its inputs; every effect (PATH, files, commands,
HTTP) goes through a ``Host``, which the tests replace with a fake.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.docker_engine import (
    CLI_TIMEOUT,
    PROBE_TIMEOUT,
    Answer,
    Completed,
    DockerEndpoint,
    Engine,
    Host,
    RealHost,
    Tls,
    probe_docker,
    resolve_docker_endpoint,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The oldest Python the program and the operator commands run on.
MIN_PYTHON = (3, 11)

PYTHON_INSTALL = "https://www.python.org/downloads/"
PULUMI_INSTALL = "https://www.pulumi.com/docs/iac/download-install/"
DOCKER_INSTALL = "https://docs.docker.com/engine/install/"
KIND_INSTALL = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
KIND_REGISTRY = "https://kind.sigs.k8s.io/docs/user/local-registry/"
MINIKUBE_START = "https://minikube.sigs.k8s.io/docs/start/"
MINIKUBE_DOCKER_ENV = "https://minikube.sigs.k8s.io/docs/handbook/pushing/"
DOCKER_DESKTOP_KUBERNETES = "https://docs.docker.com/desktop/features/kubernetes/"
#: The way forward that needs nothing but this repository (README, Try it without a cluster).
SANDBOX = (
    'or use the sandbox (README, "Try it without a cluster"): `make sandbox-tools`, `make sandbox`, '
    'then `eval "$(sandbox/sandbox.sh env)"`'
)

#: Where the check stage keeps ``pulumi version``'s output per CLI binary (``VersionCache``), under the project.
CACHE_FILE = "build/preflight/cli-versions.json"

#: The names of the checks, as messages and ``--skip`` name them.
CHECKS = ("python", "pulumi", "kubeconfig", "api-server", "docker", "image")

#: Contexts whose nodes run on the Docker engine that builds the image: an image built there is already there.
SAME_ENGINE_CONTEXTS = ("docker-desktop", "docker-for-desktop", "rancher-desktop", "orbstack", "colima")
#: The sandbox's kwokctl names its contexts ``kwok-<cluster>``; its real node runs on the sandbox's own engine.
SANDBOX_CONTEXT_PREFIX = "kwok-"
#: kind names its contexts ``kind-<cluster>``.
KIND_CONTEXT_PREFIX = "kind-"
#: minikube marks its clusters and contexts with this extension provider.
MINIKUBE_PROVIDER = "minikube.sigs.k8s.io"

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_SDK_PIN = re.compile(r"^pulumi==(\d+\.\d+\.\d+)\s*$", re.MULTILINE)


# Results.


@dataclass(frozen=True)
class Problem:
    """One failed check: what is missing or wrong, and the ways forward (commands, links, config keys)."""

    check: str
    what: str
    ways: tuple[str, ...]

    def message(self) -> str:
        """``error: [check] what``, then one line per way forward."""
        return "\n".join([f"error: [{self.check}] {self.what}"] + [f"  - {way}" for way in self.ways])


@dataclass(frozen=True)
class KindLoad:
    """An image ``make up`` builds and loads into a kind cluster before the update."""

    reference: str
    cluster: str
    platform: str | None

    @property
    def commands(self) -> tuple[tuple[str, ...], ...]:
        """The two commands, as kind documents them: build the image, then load it into the cluster's nodes."""
        build = ["docker", "build"]
        if self.platform:
            build += ["--platform", self.platform]
        return (
            (*build, "-t", self.reference, "app"),
            ("kind", "load", "docker-image", self.reference, "--name", self.cluster),
        )

    def shell(self) -> str:
        """The commands as one shell line a user can paste."""
        return " && ".join(" ".join(command) for command in self.commands)


@dataclass(frozen=True)
class Report:
    """The pre-flight's verdict: every problem found, notes for the user, and the kind load to run, if any."""

    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    kind_load: KindLoad | None = None

    @property
    def passed(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """What the command prints: each problem's message, then that nothing changed; or the notes."""
        if self.passed:
            return "\n".join(f"pre-flight: {note}" for note in self.notes)
        messages = [problem.message() for problem in self.problems]
        return "\n".join([*messages, "Nothing was changed (pre-flight)."])


# The host stage: Python and the Pulumi CLI.


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``v3.260.0`` (and ``3.260.0-dev.0``) -> (3, 260, 0); None when no version is in ``text``."""
    found = _VERSION.search(text)
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def tested_pulumi_version(requirements: str) -> tuple[int, int, int]:
    """The Pulumi version the project is tested with: the SDK's pin in requirements.txt (the sandbox's CLI)."""
    found = _SDK_PIN.search(requirements)
    version = parse_version(found.group(1)) if found else None
    if version is None:
        raise ValueError("requirements.txt pins no pulumi==<version>")
    return version


def _dotted(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


def check_python(version: Sequence[int], executable: str) -> Problem | None:
    """Python 3.11 or newer."""
    if tuple(version[:2]) >= MIN_PYTHON:
        return None
    return Problem(
        "python",
        f"Python {_dotted(MIN_PYTHON)} or newer is needed; {executable} is Python {_dotted(version[:3])}.",
        (
            f"install Python {_dotted(MIN_PYTHON)} or newer: {PYTHON_INSTALL}",
            f"then name it: `make up PYTHON=python{_dotted(MIN_PYTHON)}` "
            "(remove .venv first if it was made with the older Python)",
        ),
    )


class VersionCache:
    """``pulumi version``'s output per CLI binary, kept in a JSON file.

    Starting the CLI takes 0.2-0.3 s, most of what a passing pre-flight costs; the
    version of one binary never changes, so it is asked once per binary: the key is
    its path, size, modification time and inode, and a replaced or upgraded CLI
    is asked again. ``file`` None keeps nothing (the host stage, before any venv).
    """

    def __init__(self, file: Path | None) -> None:
        self._file = file

    def _key(self, path: str) -> str | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return f"{path}:{status.st_size}:{status.st_mtime_ns}:{status.st_ino}"

    def _read(self) -> dict[str, str]:
        try:
            stored = json.loads(self._file.read_text(encoding="utf-8")) if self._file else {}
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def get(self, path: str) -> str | None:
        """The output kept for the binary at ``path`` as it is now, or None."""
        key = self._key(path)
        return self._read().get(key) if key is not None else None

    def put(self, path: str, output: str) -> None:
        """Keep ``output`` for the binary at ``path``; a cache that cannot be written is no error."""
        key = self._key(path)
        if self._file is None or key is None:
            return
        stored = self._read()
        stored[key] = output
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            partial = self._file.with_name(f"{self._file.name}.{os.getpid()}")
            partial.write_text(json.dumps(stored), encoding="utf-8")
            os.replace(partial, self._file)  # whole or not at all, for concurrent make runs
        except OSError:
            pass


def check_pulumi(host: Host, tested: tuple[int, int, int], cache: VersionCache | None = None) -> Problem | None:
    """The Pulumi CLI on PATH, at the tested version or a newer one of the same major version."""
    want = f"Pulumi {_dotted(tested)} or a newer {tested[0]}.x"
    install = f"install {want}: {PULUMI_INSTALL}"
    path = host.which("pulumi")
    if path is None:
        return Problem("pulumi", "the Pulumi CLI (`pulumi`) is not on PATH.", (install, SANDBOX))
    cached = cache.get(path) if cache is not None else None
    done = Completed(0, cached) if cached is not None else host.run([path, "version"], CLI_TIMEOUT)
    if cache is not None and cached is None and done.returncode == 0 and parse_version(done.stdout):
        cache.put(path, done.stdout)
    found = parse_version(done.stdout) if done.returncode == 0 else None
    if found is None:
        said = (done.stderr or done.stdout).strip().splitlines()
        return Problem(
            "pulumi",
            f"`{path} version` did not print a version: {said[-1] if said else 'no output'}.",
            (install, SANDBOX),
        )
    if found[0] != tested[0] or found < tested:
        return Problem(
            "pulumi",
            f"the Pulumi CLI at {path} is v{_dotted(found)}; this project is tested with v{_dotted(tested)} "
            f"(requirements.txt pins the SDK to it) and needs {want}.",
            (install, SANDBOX),
        )
    return None


def host_checks(host: Host, version: Sequence[int], executable: str, tested: tuple[int, int, int]) -> Report:
    """The host stage: Python, then the Pulumi CLI."""
    problems = [p for p in (check_python(version, executable), check_pulumi(host, tested)) if p is not None]
    return Report(tuple(problems))


# The stack: what it will use and whether it builds.


@dataclass(frozen=True)
class StackFacts:
    """What the stack's files say, before any CLI runs.

    ``config``: full keys (``kubernetes:context``, ``k8s-demo:imageTag``) to their values as written: Pulumi.yaml's
    defaults overlaid by the stack file; a secret is a mapping (``{"secure": ...}``). ``app_marker`` is the imageTag
    default, which stands for the app's version (``app/VERSION``).
    """

    stack: str
    stack_file: str
    config: Mapping[str, object]
    app_version: str
    app_marker: str
    project: str


def _config_text(facts: StackFacts, key: str) -> str | None:
    value = facts.config.get(key)
    if value is None or isinstance(value, dict):
        return None
    return value if isinstance(value, str) else str(value)


def _is_local(reference: str) -> bool:
    """No registry host in the image's repository: a local image, which the cluster must find on its nodes."""
    from components.values import registry_host  # noqa: PLC0415  # Python 3.11 code: the check stage only

    return registry_host(reference.rsplit(":", 1)[0]) is None


def image_to_build(facts: StackFacts, command: str, to: str | None) -> str | None:
    """The image reference this command builds, or None when it builds nothing.

    Only the app's own version is built: ``imageTag`` is the marker or equals ``app/VERSION``. A rollback deploys
    the tag it is given (a release number names an earlier release's tag, which is not built).
    """
    repository = _config_text(facts, f"{facts.project}:imageRepository") or facts.project
    if command == "rollback":
        tag = None if to is None or to.isdigit() else to
    else:
        configured = _config_text(facts, f"{facts.project}:imageTag")
        tag = facts.app_version if configured in (None, facts.app_marker) else configured
    return f"{repository}:{tag}" if tag == facts.app_version else None


# The kubeconfig: the context the stack uses, found as the Kubernetes provider finds it.


@dataclass(frozen=True)
class KubeTarget:
    """The cluster the stack will talk to: its context, server, how to trust it, and where that was found."""

    context: str
    cluster: str
    server: str
    source: str
    contexts: tuple[str, ...] = ()
    tls: Tls = field(default_factory=Tls)
    minikube: bool = False


@dataclass(frozen=True)
class _Kubeconfig:
    """Kubeconfig files merged as kubectl merges them: the first file to name an entry wins."""

    current_context: str
    contexts: Mapping[str, Mapping[str, Any]]
    clusters: Mapping[str, Mapping[str, Any]]
    cluster_dirs: Mapping[str, Path]


def _load_yaml(text: str) -> object:
    """YAML (or JSON) text as Python values; ``ValueError`` when it is not YAML."""
    import yaml  # noqa: PLC0415  # the check stage only: the host stage runs without PyYAML

    # libyaml's loader when PyYAML was built with it: a third of the pure-Python one's time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # a safe loader, C or Python
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from None


def _merge(documents: Sequence[tuple[Path, Mapping[str, Any]]]) -> _Kubeconfig:
    current = ""
    contexts: dict[str, Mapping[str, Any]] = {}
    clusters: dict[str, Mapping[str, Any]] = {}
    dirs: dict[str, Path] = {}
    for directory, document in documents:
        current = current or str(document.get("current-context") or "")
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") is not None:
                contexts.setdefault(str(entry["name"]), entry)
        for entry in document.get("clusters") or []:
            if isinstance(entry, dict) and entry.get("name") is not None and str(entry["name"]) not in clusters:
                clusters[str(entry["name"])] = entry
                dirs[str(entry["name"])] = directory
    return _Kubeconfig(current, contexts, clusters, dirs)


_START_A_CLUSTER = (
    "start a local cluster, which writes ~/.kube/config and selects its context: docker-desktop "
    f"(Settings > Kubernetes > Enable Kubernetes: {DOCKER_DESKTOP_KUBERNETES}), `kind create cluster` "
    f"({KIND_INSTALL}) or `minikube start` ({MINIKUBE_START})"
)


def _point_the_stack(facts: StackFacts) -> str:
    return (
        f"or point stack {facts.stack} at a cluster: `pulumi config set kubernetes:kubeconfig <path>` "
        "and/or `pulumi config set kubernetes:context <context>`"
    )


def _parse_kubeconfig(text: str) -> Mapping[str, Any] | None:
    try:
        parsed = _load_yaml(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _kubeconfig_documents(facts: StackFacts, host: Host) -> tuple[list[tuple[Path, Mapping[str, Any]]], str] | Problem:
    """The kubeconfig documents the provider will read, and where they come from (for messages)."""
    configured = facts.config.get("kubernetes:kubeconfig")
    if configured is not None:
        # The provider takes a path or the file's content.
        text = str(configured)
        where = f"kubernetes:kubeconfig ({facts.stack_file})"
        path = Path(os.path.expanduser(text)) if "\n" not in text.strip() else None
        content = host.read_text(path) if path is not None else None
        document = _parse_kubeconfig(content if content is not None else text)
        if document is None or (content is None and "clusters" not in document):
            return Problem(
                "kubeconfig",
                f"{where} is {text[:80]!r}: no such file, and not a kubeconfig's content either.",
                (
                    "set it to a kubeconfig file that exists: `pulumi config set kubernetes:kubeconfig <path>`, "
                    "or remove it to use KUBECONFIG or ~/.kube/config: `pulumi config rm kubernetes:kubeconfig`",
                ),
            )
        directory = path.parent if content is not None and path is not None else Path.cwd()
        return [(directory, document)], (f"{where} = {text}" if content is not None else f"{where}, inline")
    if host.env.get("KUBECONFIG"):
        paths = [Path(os.path.expanduser(p)) for p in host.env["KUBECONFIG"].split(os.pathsep) if p]
        source = f"KUBECONFIG={host.env['KUBECONFIG']}"
        absent = f"kubernetes:kubeconfig is not set, and {source} names no file that exists"
    else:
        paths, source = [host.home / ".kube" / "config"], "~/.kube/config"
        absent = "kubernetes:kubeconfig and KUBECONFIG are not set, and there is no ~/.kube/config"
    documents: list[tuple[Path, Mapping[str, Any]]] = []
    for path in paths:
        content = host.read_text(path)
        document = _parse_kubeconfig(content) if content is not None else None
        if document is not None:  # kubectl skips the files of KUBECONFIG that do not exist
            documents.append((path.parent, document))
    if not documents:
        return Problem(
            "kubeconfig",
            f"no kubeconfig for stack {facts.stack}: {absent}.",
            (_START_A_CLUSTER, SANDBOX, _point_the_stack(facts)),
        )
    return documents, source


def _ca_pem(cluster: Mapping[str, Any], directory: Path, host: Host) -> str | None:
    data = cluster.get("certificate-authority-data")
    if data:
        return base64.b64decode(str(data)).decode("utf-8", "replace")
    path = cluster.get("certificate-authority")
    if path:
        return host.read_text(directory / os.path.expanduser(str(path)))
    return None


def _is_minikube(*entries: Mapping[str, Any]) -> bool:
    for entry in entries:
        for extension in entry.get("extensions") or []:
            inner = extension.get("extension") if isinstance(extension, dict) else None
            if isinstance(inner, dict) and inner.get("provider") == MINIKUBE_PROVIDER:
                return True
    return False


def resolve_kube_target(facts: StackFacts, host: Host) -> KubeTarget | Problem | None:
    """The stack's cluster; a Problem when there is none; None when the kubeconfig is a secret (not readable here)."""
    if isinstance(facts.config.get("kubernetes:kubeconfig"), dict):
        return None
    found = _kubeconfig_documents(facts, host)
    if isinstance(found, Problem):
        return found
    documents, source = found
    merged = _merge(documents)
    names = tuple(sorted(merged.contexts))
    listed = f" (its contexts: {', '.join(names)})" if names else " (it has no contexts)"
    configured = _config_text(facts, "kubernetes:context")
    name = configured or merged.current_context
    use = f"`pulumi config set kubernetes:context <context>`{listed}"
    if not name:
        return Problem(
            "kubeconfig",
            f"{source} selects no context (no current-context), and kubernetes:context is not set.",
            (f"choose one: {use}, or `kubectl config use-context <context>`", _START_A_CLUSTER, SANDBOX),
        )
    if name not in merged.contexts:
        said = f"kubernetes:context ({facts.stack_file})" if configured else "its current-context"
        return Problem(
            "kubeconfig",
            f"the context {name!r} ({said}) is not in {source}.",
            (f"choose one that is: {use}", _START_A_CLUSTER, SANDBOX),
        )
    context_entry = merged.contexts[name]
    context = context_entry.get("context") or {}
    cluster_name = _config_text(facts, "kubernetes:cluster") or str(context.get("cluster") or "")
    cluster_entry = merged.clusters.get(cluster_name)
    cluster = (cluster_entry or {}).get("cluster") or {}
    if not cluster.get("server"):
        return Problem(
            "kubeconfig",
            f"the context {name!r} names the cluster {cluster_name!r}, which {source} does not define "
            "(or defines without a server).",
            (f"choose another context: {use}", _START_A_CLUSTER, SANDBOX),
        )
    directory = merged.cluster_dirs.get(cluster_name, Path.cwd())
    tls = Tls(
        ca_pem=_ca_pem(cluster, directory, host),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        server_name=cluster.get("tls-server-name"),
    )
    return KubeTarget(
        context=name,
        cluster=cluster_name,
        server=str(cluster["server"]).rstrip("/"),
        source=source,
        contexts=names,
        tls=tls,
        minikube=_is_minikube(context, cluster) or name == "minikube",
    )


def _start_this_cluster(target: KubeTarget) -> str:
    if target.context.startswith(KIND_CONTEXT_PREFIX):
        name = target.context[len(KIND_CONTEXT_PREFIX) :]
        return (
            f"start it: kind's node containers stop with Docker: `docker start {name}-control-plane`, "
            f"or make it again: `kind create cluster --name {name}`"
        )
    if target.minikube:
        return f"start it: `minikube start -p {target.context}`"
    if target.context in SAME_ENGINE_CONTEXTS:
        return f"start it: start {target.context} with Kubernetes enabled ({DOCKER_DESKTOP_KUBERNETES})"
    if target.context.startswith(SANDBOX_CONTEXT_PREFIX):
        return 'start it: `make sandbox` (then `eval "$(sandbox/sandbox.sh env)"` in this shell)'
    return "start the cluster, or reach it (VPN, tunnel), and run the command again"


def check_api_server(target: KubeTarget, answer: Answer) -> Problem | None:
    """The API server answered ``/readyz``: ready, or refusing anonymous requests (it is up)."""
    if answer.status is not None and (answer.status < 300 or answer.status in (401, 403)):
        return None
    if answer.status is not None:
        first = answer.body.strip().splitlines()[-1:] or [""]
        what = f"answers /readyz with HTTP {answer.status}: it is not ready ({first[0][:200]})"
    else:
        what = f"does not answer: {answer.error}, within {PROBE_TIMEOUT:g} s"
    others = [c for c in target.contexts if c != target.context]
    other = f" (others in the kubeconfig: {', '.join(others)})" if others else ""
    return Problem(
        "api-server",
        f"the API server of context {target.context!r} ({target.server}, from {target.source}) {what}.",
        (
            _start_this_cluster(target),
            f"or use another context: `pulumi config set kubernetes:context <context>`{other}",
            SANDBOX,
        ),
    )


def check_docker(endpoint: DockerEndpoint, engine: Engine | str, reference: str) -> Problem | None:
    """A Docker engine answers, when the image must be built."""
    if isinstance(engine, Engine):
        return None
    return Problem(
        "docker",
        f"this update builds {reference} (imageTag is the app's version), and no Docker engine answers at "
        f"{endpoint.host} ({endpoint.source}): {engine}.",
        (
            f"start Docker, or install it: {DOCKER_INSTALL}",
            SANDBOX,
            "or deploy an image that exists, without a build: `pulumi config set imageTag <tag>` (see `make history`)",
        ),
    )


# Can the cluster run an image built on this engine?


def check_image_delivery(
    target: KubeTarget, reference: str, *, endpoint: DockerEndpoint, platform: str | None, host: Host, project: str
) -> Problem | KindLoad | None:
    """How a local image built here reaches the cluster: already there, loaded into kind, or not at all.

    ``platform`` is the one the update builds for (``buildPlatform``, else the engine's): the kind load builds the same.
    """
    registry = f"`pulumi config set imageRepository <registry host>/{project}`"
    if target.context in SAME_ENGINE_CONTEXTS or target.context.startswith(SANDBOX_CONTEXT_PREFIX):
        return None
    if target.context.startswith(KIND_CONTEXT_PREFIX):
        cluster = target.context[len(KIND_CONTEXT_PREFIX) :]
        load = KindLoad(reference, cluster, platform)
        if host.which("kind") is not None:
            return load
        return Problem(
            "image",
            f"kind cluster {cluster!r} has an image store of its own: {reference}, built by the engine at "
            f"{endpoint.host}, must be loaded into it (`{load.shell()}`), and `kind` is not on PATH.",
            (
                f"install kind ({KIND_INSTALL}): `make up` then builds and loads the image itself",
                f"or push to a registry the cluster pulls from: {registry} (kind's local registry: {KIND_REGISTRY})",
            ),
        )
    if target.minikube:
        if host.env.get("MINIKUBE_ACTIVE_DOCKERD") == target.context:
            return None
        return Problem(
            "image",
            f"minikube cluster {target.context!r} runs its images from its own Docker engine, not from the one at "
            f"{endpoint.host} ({endpoint.source}), so it would not find {reference}.",
            (
                f"build in minikube's engine: `eval $(minikube -p {target.context} docker-env)`, "
                f"then run the command again in that shell ({MINIKUBE_DOCKER_ENV})",
                f"or push to a registry the cluster pulls from: {registry}",
            ),
        )
    return Problem(
        "image",
        f"{reference} is a local image (imageRepository has no registry host), built by the engine at "
        f"{endpoint.host}, and the cluster of context {target.context!r} ({target.server}) is not known to "
        "run on that engine (docker-desktop and the sandbox do) or to load images from it (kind, minikube).",
        (
            f"push it to a registry the cluster pulls from: {registry} (then `docker login <registry host>`)",
            "if this cluster's nodes do use that Docker engine, skip this check: `make up PREFLIGHT_SKIP=image`",
        ),
    )


# The whole pre-flight.


def preflight(
    host: Host,
    facts: StackFacts,
    *,
    command: str,
    to: str | None = None,
    version: Sequence[int] = sys.version_info[:3],
    executable: str = sys.executable,
    tested: tuple[int, int, int],
    skip: Sequence[str] = (),
    cache: VersionCache | None = None,
) -> Report:
    """Every check for ``command`` (``up``, ``preview``, ``rollback``) on ``facts``' stack, independent ones at once.

    The Pulumi CLI, the API server and the Docker engine are asked side by side, so the whole takes as long as the
    slowest of them (the CLI's start, about 0.2 s), and at most ``PROBE_TIMEOUT`` when something does not answer.
    """
    problems: list[Problem] = []
    notes: list[str] = []
    kind_load: KindLoad | None = None
    reference = image_to_build(facts, command, to)
    target = resolve_kube_target(facts, host) if "kubeconfig" not in skip else None
    endpoint = (
        resolve_docker_endpoint(host, _config_text(facts, "docker:host"), f"docker:host ({facts.stack_file})")
        if reference is not None
        else None
    )

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        pulumi = pool.submit(check_pulumi, host, tested, cache) if "pulumi" not in skip else None
        api = (
            pool.submit(host.get, f"{target.server}/readyz", target.tls, PROBE_TIMEOUT)
            if isinstance(target, KubeTarget) and "api-server" not in skip
            else None
        )
        docker = pool.submit(probe_docker, endpoint, host) if endpoint is not None and "docker" not in skip else None
        if "python" not in skip:
            problems.extend(p for p in [check_python(version, executable)] if p is not None)
        if pulumi is not None:
            problems.extend(p for p in [pulumi.result()] if p is not None)
        if isinstance(target, Problem):
            problems.append(target)
        elif target is None and "kubeconfig" not in skip:
            notes.append("kubernetes:kubeconfig is a secret: the cluster is not checked before the update")
        if api is not None and isinstance(target, KubeTarget):
            problems.extend(p for p in [check_api_server(target, api.result())] if p is not None)
        engine = docker.result() if docker is not None else None

    if reference is not None and endpoint is not None:
        if engine is not None:
            problems.extend(p for p in [check_docker(endpoint, engine, reference)] if p is not None)
        if _is_local(reference) and isinstance(target, KubeTarget) and "image" not in skip:
            delivery = check_image_delivery(
                target,
                reference,
                endpoint=endpoint,
                platform=_config_text(facts, f"{facts.project}:buildPlatform")
                or (engine.platform if isinstance(engine, Engine) else None),
                host=host,
                project=facts.project,
            )
            if isinstance(delivery, Problem):
                problems.append(delivery)
            elif isinstance(delivery, KindLoad):
                kind_load = delivery
                if command == "up":
                    notes.append(f"kind cluster {delivery.cluster!r}: loading {reference} into it: {delivery.shell()}")
    return Report(tuple(problems), tuple(notes), kind_load)


# The command line.


def load_facts(root: Path, stack: str) -> StackFacts:
    """The stack's config as its files state it (Pulumi.yaml's defaults, then Pulumi.<stack>.yaml); the app version."""
    from project import NAME, read_app_version  # noqa: PLC0415  # needs PyYAML: the check stage only

    project_doc = _load_yaml((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    declared = project_doc.get("config") if isinstance(project_doc, dict) else None
    config: dict[str, object] = {
        f"{NAME}:{key}": spec.get("default") for key, spec in (declared or {}).items() if isinstance(spec, dict)
    }
    stack_file = f"Pulumi.{stack}.yaml"
    path = root / stack_file
    if path.exists():
        document = _load_yaml(path.read_text(encoding="utf-8"))
        config.update((document.get("config") if isinstance(document, dict) else None) or {})
    marker = config.get(f"{NAME}:imageTag")
    return StackFacts(
        stack=stack,
        stack_file=stack_file,
        config=config,
        app_version=read_app_version(root),
        app_marker=str(marker) if marker is not None else "",
        project=NAME,
    )


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


def _tested(root: Path) -> tuple[int, int, int]:
    return tested_pulumi_version((root / "requirements.txt").read_text(encoding="utf-8"))


def run_kind_load(load: KindLoad, host: Host, root: Path) -> int:
    """Build the image and load it into the kind cluster, printing each command; the first failure's status."""
    for argv in load.commands:
        print(f"pre-flight: $ {' '.join(argv)}", file=sys.stderr, flush=True)
        done = subprocess.run(list(argv), cwd=root, env=dict(host.env), check=False)
        if done.returncode != 0:
            print(f"error: [image] `{' '.join(argv)}` failed (exit {done.returncode}).", file=sys.stderr)
            return done.returncode
    return 0


def _refused_flags(argv: Sequence[str]) -> Problem | None:
    """make up's ARGS, checked before anything runs: a Problem naming the flag it cannot honour, else None."""
    from ops.update_flags import HELP, Refused, parse  # noqa: PLC0415  # Python 3.11 code: the check stage only

    try:
        parse([arg for arg in argv if arg != "--"])
    except Refused as refused:
        return Problem("flags", f"{refused}.", (HELP,))
    return None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m ops.preflight", description=__doc__.splitlines()[0])
    stages = top.add_subparsers(dest="stage", required=True)
    stages.add_parser("host", help="Python and the Pulumi CLI only (standard library; before the venv exists)")
    check = stages.add_parser("check", help="every check, for one command on one stack")
    check.add_argument("--stack", default="dev", help="the stack (default: dev)")
    check.add_argument("--for", dest="command", choices=("up", "preview", "rollback"), default="up")
    check.add_argument("--to", help="make rollback's TO: a release number or a tag")
    check.add_argument(
        "--skip",
        default="",
        help=f"comma-separated checks to skip, of: {', '.join(CHECKS)} (make PREFLIGHT_SKIP=...)",
    )
    check.add_argument("--load", action="store_true", help="build and load the image into a kind cluster (make up)")
    check.add_argument("update_flags", nargs=argparse.REMAINDER, help="-- then make up's ARGS, to check them first")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 passed, 2 refused (nothing was changed)."""
    args = parser().parse_args(argv)
    root = _root()
    host = RealHost()
    if args.stage == "host":
        report = host_checks(host, sys.version_info[:3], sys.executable, _tested(root))
    else:
        skip = tuple(name.strip() for name in args.skip.split(",") if name.strip())
        unknown = [name for name in skip if name not in CHECKS]
        if unknown:
            print(
                f"error: unknown pre-flight check {', '.join(unknown)}; the checks: {', '.join(CHECKS)}",
                file=sys.stderr,
            )
            return 2
        refused = _refused_flags(args.update_flags) if args.command == "up" else None
        if refused is not None:
            print(f"{refused.message()}\nNothing was changed (pre-flight).", file=sys.stderr)
            return 2
        report = preflight(
            host,
            load_facts(root, args.stack),
            command=args.command,
            to=args.to,
            tested=_tested(root),
            skip=skip,
            cache=VersionCache(root / CACHE_FILE),
        )
    if report.text():
        print(report.text(), file=sys.stderr)
    if not report.passed:
        return 2
    if args.stage == "check" and args.load and report.kind_load is not None:
        return run_kind_load(report.kind_load, host, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

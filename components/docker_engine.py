"""The Docker engine the image is built in: where the Docker provider finds it, and the platform it builds for.

The Docker provider builds in the engine named by ``docker:host``, else
``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH``), else the
current Docker context (``DOCKER_CONTEXT``, or ``currentContext`` in
``~/.docker/config.json``), else ``/var/run/docker.sock``, as the docker CLI
does. ``engine_platform`` asks that engine (``GET /version``) for its OS and
architecture, ``linux/amd64``: the platform the program builds the image for
when ``buildPlatform`` is not set, so the build names its platform (the Docker
provider would otherwise take the architecture of the machine it runs on, and
say so on every build).

The pre-flight (``ops.preflight``) asks the same engine the same way before an
update. Every effect goes through a ``Host`` (environment, files, commands,
HTTP), which tests replace with a fake. Standard library only, and it parses on
Python 3.8: the pre-flight's first stage imports it with the system ``python3``
to tell an older Python what it needs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

#: Seconds an engine (or an API server) gets to answer; the docker CLI gets ``CLI_TIMEOUT``.
PROBE_TIMEOUT = 3.0
CLI_TIMEOUT = 10.0


@dataclass(frozen=True)
class Completed:
    """A command's exit status and output; ``returncode`` None when it could not run or timed out (``stderr`` says)."""

    returncode: int | None
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Answer:
    """An HTTP endpoint's answer: its status and body, or ``error`` (why none came)."""

    status: int | None = None
    body: str = ""
    error: str = ""


@dataclass(frozen=True)
class Tls:
    """How to speak TLS to a server: the CA to trust (PEM text; None for the system's), client certificate files."""

    ca_pem: str | None = None
    verify: bool = True
    server_name: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class Host(Protocol):
    """Everything the checks read from the machine."""

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def home(self) -> Path: ...

    def which(self, name: str) -> str | None: ...

    def run(self, argv: Sequence[str], timeout: float) -> Completed: ...

    def read_text(self, path: Path) -> str | None: ...

    def get(self, url: str, tls: Tls | None, timeout: float, unix_socket: str | None = None) -> Answer:
        """GET ``url`` (over ``unix_socket`` when given); an HTTP error status is an answer, not an error."""
        ...


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the Docker engine's default endpoint)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _ssl_context(tls: Tls) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=tls.ca_pem) if tls.ca_pem else ssl.create_default_context()
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


class RealHost:
    """The machine this runs on."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    @property
    def home(self) -> Path:
        return Path(self._env.get("HOME") or Path.home())

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self._env.get("PATH", os.defpath))

    def run(self, argv: Sequence[str], timeout: float) -> Completed:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, env=self._env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return Completed(None, stderr=str(error))
        return Completed(done.returncode, done.stdout, done.stderr)

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return None

    def get(self, url: str, tls: Tls | None, timeout: float, unix_socket: str | None = None) -> Answer:
        parts = urllib.parse.urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        try:
            if unix_socket is not None:
                connection = _UnixConnection(unix_socket, timeout)
            elif parts.scheme == "https":
                tls = tls or Tls()
                context = _ssl_context(tls)
                if tls.server_name:
                    connection = _NamedHTTPSConnection(
                        parts.hostname or "", parts.port, timeout, context, tls.server_name
                    )
                else:
                    connection = http.client.HTTPSConnection(
                        parts.hostname or "", parts.port, timeout=timeout, context=context
                    )
            else:
                connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
            connection.request("GET", path, headers={"Accept": "application/json, */*"})
            response = connection.getresponse()
            body = response.read(4096).decode("utf-8", "replace")
            connection.close()
            return Answer(status=response.status, body=body)
        except (OSError, http.client.HTTPException, ValueError) as error:
            return Answer(error=_reason(error))


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address whose certificate names another host (a kubeconfig's ``tls-server-name``)."""

    def __init__(self, host: str, port: int | None, timeout: float, context: ssl.SSLContext, name: str) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._context = context
        self._name = name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._name)


def _reason(error: BaseException) -> str:
    """A connection error in a few words: ``connection refused``, ``timed out``, the certificate's complaint."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({error.verify_message})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(error, FileNotFoundError):
        return "no such socket"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror})"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


@dataclass(frozen=True)
class DockerEndpoint:
    """A Docker engine's address (``unix://…``, ``tcp://…``, ``ssh://…``), how to reach it, where it was found."""

    host: str
    source: str
    tls: Tls | None = None


def _docker_config_dir(host: Host) -> Path:
    return Path(os.path.expanduser(host.env.get("DOCKER_CONFIG") or str(host.home / ".docker")))


def _env_tls(host: Host) -> Tls | None:
    verify = host.env.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = host.env.get("DOCKER_CERT_PATH")
    if not verify and not cert_path:
        return None
    directory = Path(cert_path) if cert_path else _docker_config_dir(host)
    return Tls(
        ca_pem=host.read_text(directory / "ca.pem") if verify else None,
        verify=verify,
        cert_file=str(directory / "cert.pem"),
        key_file=str(directory / "key.pem"),
    )


def resolve_docker_endpoint(host: Host, configured: str | None = None, where: str = "docker:host") -> DockerEndpoint:
    """The engine the Docker provider will use: ``docker:host``, ``DOCKER_HOST``, the Docker context, the default.

    ``configured`` is the stack's ``docker:host``, if set; ``where`` names it in messages.
    """
    if configured:
        return DockerEndpoint(configured, where)
    if host.env.get("DOCKER_HOST"):
        return DockerEndpoint(host.env["DOCKER_HOST"], "DOCKER_HOST", _env_tls(host))
    config_dir = _docker_config_dir(host)
    name = host.env.get("DOCKER_CONTEXT")
    if not name:
        text = host.read_text(config_dir / "config.json")
        try:
            name = str(json.loads(text).get("currentContext") or "") if text else ""
        except ValueError:
            name = ""
    if name and name != "default":
        # The docker CLI keeps a context's endpoint under the SHA-256 of its name.
        digest = hashlib.sha256(name.encode()).hexdigest()
        meta_text = host.read_text(config_dir / "contexts" / "meta" / digest / "meta.json")
        try:
            meta = json.loads(meta_text) if meta_text else {}
        except ValueError:
            meta = {}
        docker = (meta.get("Endpoints") or {}).get("docker") or {}
        if docker.get("Host"):
            tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
            ca = host.read_text(tls_dir / "ca.pem")
            tls = Tls(
                ca_pem=ca,
                verify=not docker.get("SkipTLSVerify", False),
                cert_file=str(tls_dir / "cert.pem") if host.read_text(tls_dir / "cert.pem") else None,
                key_file=str(tls_dir / "key.pem") if host.read_text(tls_dir / "key.pem") else None,
            )
            return DockerEndpoint(str(docker["Host"]), f"docker context {name!r}", tls)
    return DockerEndpoint("unix:///var/run/docker.sock", "the default: DOCKER_HOST is not set")


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answered: its platform (``linux/amd64``), as the Docker provider builds for it."""

    platform: str


def probe_docker(endpoint: DockerEndpoint, host: Host) -> Engine | str:
    """Ask the engine for its version (``GET /version``); the engine, or why it did not answer."""
    parts = urllib.parse.urlsplit(endpoint.host)
    if parts.scheme == "unix":
        answer = host.get("http://localhost/version", None, PROBE_TIMEOUT, unix_socket=parts.path)
    elif parts.scheme == "tcp":
        scheme = "https" if endpoint.tls is not None else "http"
        answer = host.get(f"{scheme}://{parts.netloc}/version", endpoint.tls, PROBE_TIMEOUT)
    else:
        # ssh:// and npipe:// need the docker CLI's own transport.
        docker = host.which("docker")
        if docker is None:
            return f"{endpoint.host} is reached through the docker CLI, which is not on PATH"
        done = host.run([docker, "version", "--format", "{{json .Server}}"], CLI_TIMEOUT)
        answer = Answer(status=200, body=done.stdout) if done.returncode == 0 else Answer(error=done.stderr.strip())
    if answer.status is None:
        return answer.error
    if answer.status != 200:
        return f"it answered HTTP {answer.status}"
    try:
        version = json.loads(answer.body)
    except ValueError:
        return "its answer was not Docker's"
    os_name, arch = version.get("Os"), version.get("Arch")
    if not os_name or not arch:
        return "its answer named no platform"
    return Engine(f"{os_name}/{arch}")


def engine_platform(host: Host | None = None, configured: str | None = None) -> str | None:
    """The platform of the engine the Docker provider will build in (``linux/amd64``); None when it does not answer.

    ``configured`` is the stack's ``docker:host``. While ``simulated_engine`` is in effect, its platform, unasked.
    """
    if _simulated:
        return _simulated[-1]
    host = host if host is not None else RealHost()
    engine = probe_docker(resolve_docker_endpoint(host, configured), host)
    return engine.platform if isinstance(engine, Engine) else None


_simulated: list[str] = []


@contextmanager
def simulated_engine(platform: str) -> Iterator[None]:
    """Within: ``engine_platform`` answers ``platform`` and asks no engine (the offline renderer's mocked Docker)."""
    _simulated.append(platform)
    try:
        yield
    finally:
        _simulated.pop()

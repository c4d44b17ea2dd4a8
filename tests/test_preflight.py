"""The pre-flight's checks and messages, each on a fake host (PATH, files, commands and HTTP answers as given)."""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import json
import socket
import socketserver
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import docker_engine
from components.docker_engine import Answer, Completed, DockerEndpoint, Engine, RealHost, Tls
from ops import preflight
from ops.preflight import KindLoad, KubeTarget, Problem, StackFacts
from project import ROOT

HOME = Path("/home/user")
TESTED = (3, 260, 0)
SERVER = "https://127.0.0.1:6443"
DEFAULT_SOCKET = "/var/run/docker.sock"
ENGINE_VERSION = json.dumps({"Os": "linux", "Arch": "amd64", "Version": "27.5.1"})


@dataclass
class FakeHost:
    """A machine as the test describes it; records every GET."""

    env: dict[str, str] = field(default_factory=dict)
    home: Path = HOME
    files: dict[Path, str] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)
    commands: dict[tuple[str, ...], Completed] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, Tls | None]] = field(default_factory=list)

    def which(self, name: str) -> str | None:
        return self.programs.get(name)

    def run(self, argv: Sequence[str], timeout: float) -> Completed:
        return self.commands.get(tuple(argv), Completed(None, stderr=f"{argv[0]}: not found"))

    def read_text(self, path: Path) -> str | None:
        return self.files.get(path)

    def get(self, url: str, tls: Tls | None, timeout: float, unix_socket: str | None = None) -> Answer:
        key = f"unix://{unix_socket}" if unix_socket else url
        self.requests.append((key, tls))
        return self.answers.get(key, Answer(error="connection refused"))


def kubeconfig(*contexts: str, current: str = "", server: str = SERVER, **cluster: Any) -> str:  # noqa: ANN401
    """A kubeconfig with one cluster per context (named like it), all at ``server``."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": current,
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in contexts],
            "clusters": [{"name": name, "cluster": {"server": server, **cluster}} for name in contexts],
            "users": [{"name": name, "user": {}} for name in contexts],
        }
    )


def facts(**config: object) -> StackFacts:
    """The dev stack at app version 0.2, imageTag the marker (so it builds k8s-demo:0.2), plus ``config``."""
    return StackFacts(
        stack="dev",
        stack_file="Pulumi.dev.yaml",
        config={"k8s-demo:imageTag": "app/VERSION", "k8s-demo:imageRepository": "k8s-demo", **config},
        app_version="0.2",
        app_marker="app/VERSION",
        project="k8s-demo",
    )


def ready_host(context: str = "docker-desktop", **overrides: Any) -> FakeHost:  # noqa: ANN401
    """A host where everything passes: the tested CLI, a kubeconfig on ``context``, the API server, a Docker engine."""
    host = FakeHost(
        programs={"pulumi": "/usr/bin/pulumi"},
        commands={("/usr/bin/pulumi", "version"): Completed(0, "v3.260.0\n")},
        files={HOME / ".kube" / "config": kubeconfig(context, current=context)},
        answers={f"{SERVER}/readyz": Answer(200, "ok"), f"unix://{DEFAULT_SOCKET}": Answer(200, ENGINE_VERSION)},
    )
    for name, value in overrides.items():
        setattr(host, name, value)
    return host


def run(host: FakeHost, stack: StackFacts | None = None, command: str = "up", **kwargs: Any) -> preflight.Report:  # noqa: ANN401
    return preflight.preflight(
        host, stack or facts(), command=command, version=(3, 11, 7), executable="python3", tested=TESTED, **kwargs
    )


def only(report: preflight.Report) -> Problem:
    assert len(report.problems) == 1, report.text()
    return report.problems[0]


# Python and the Pulumi CLI.


def test_python_older_than_3_11_is_refused_with_its_version_and_how_to_name_another() -> None:
    problem = preflight.check_python((3, 10, 13), "/usr/bin/python3")
    assert problem is not None
    assert problem.message() == (
        "error: [python] Python 3.11 or newer is needed; /usr/bin/python3 is Python 3.10.13.\n"
        "  - install Python 3.11 or newer: https://www.python.org/downloads/\n"
        "  - then name it: `make up PYTHON=python3.11` (remove .venv first if it was made with the older Python)"
    )


def test_python_3_11_passes() -> None:
    assert preflight.check_python((3, 11, 0), "python3") is None


@pytest.mark.parametrize("module", ["ops/preflight.py", "components/docker_engine.py"])
def test_the_host_stage_parses_as_python_3_8_so_an_old_python_gets_the_message(module: str) -> None:
    source = (ROOT / module).read_text(encoding="utf-8")
    assert isinstance(ast.parse(source, feature_version=(3, 8)), ast.Module)


def test_the_tested_cli_version_is_the_sdk_pin() -> None:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert preflight.tested_pulumi_version(requirements) == (3, 260, 0)


def test_no_pulumi_cli_names_the_install_page_and_the_sandbox() -> None:
    problem = preflight.check_pulumi(FakeHost(), TESTED)
    assert problem is not None
    assert problem.message() == (
        "error: [pulumi] the Pulumi CLI (`pulumi`) is not on PATH.\n"
        "  - install Pulumi 3.260.0 or a newer 3.x: https://www.pulumi.com/docs/iac/download-install/\n"
        '  - or use the sandbox (README, "Try it without a cluster"): `make sandbox-tools`, `make sandbox`, '
        'then `eval "$(sandbox/sandbox.sh env)"`'
    )


def test_an_older_cli_is_refused_with_both_versions() -> None:
    host = ready_host(commands={("/usr/bin/pulumi", "version"): Completed(0, "v3.100.0\n")})
    problem = preflight.check_pulumi(host, TESTED)
    assert problem is not None
    assert problem.what == (
        "the Pulumi CLI at /usr/bin/pulumi is v3.100.0; this project is tested with v3.260.0 "
        "(requirements.txt pins the SDK to it) and needs Pulumi 3.260.0 or a newer 3.x."
    )


def test_a_newer_cli_of_the_same_major_version_passes() -> None:
    host = ready_host(commands={("/usr/bin/pulumi", "version"): Completed(0, "v3.261.2\n")})
    assert preflight.check_pulumi(host, TESTED) is None


def test_a_cli_of_another_major_version_is_refused() -> None:
    host = ready_host(commands={("/usr/bin/pulumi", "version"): Completed(0, "v4.0.0\n")})
    problem = preflight.check_pulumi(host, TESTED)
    assert problem is not None
    assert problem.what.startswith("the Pulumi CLI at /usr/bin/pulumi is v4.0.0;")


def test_a_cli_that_prints_no_version_is_refused_with_what_it_said() -> None:
    host = ready_host(commands={("/usr/bin/pulumi", "version"): Completed(1, "", "exec format error\n")})
    problem = preflight.check_pulumi(host, TESTED)
    assert problem is not None
    assert problem.what == "`/usr/bin/pulumi version` did not print a version: exec format error."


# What the update builds.


@pytest.mark.parametrize(
    ("config", "command", "to", "built"),
    [
        ({}, "up", None, "k8s-demo:0.2"),
        ({"k8s-demo:imageTag": "0.2"}, "preview", None, "k8s-demo:0.2"),
        ({"k8s-demo:imageTag": "0.1"}, "up", None, None),
        ({"k8s-demo:imageRepository": "registry.example.com/team/k8s-demo"}, "up", None, None),
        ({}, "rollback", "3", None),
        ({}, "rollback", "0.1", None),
        ({}, "rollback", "0.2", "k8s-demo:0.2"),
    ],
)
def test_only_the_app_version_is_built(config: dict[str, str], command: str, to: str | None, built: str | None) -> None:
    reference = preflight.image_to_build(facts(**config), command, to)
    expected = built
    if config.get("k8s-demo:imageRepository"):
        expected = "registry.example.com/team/k8s-demo:0.2"
    assert reference == expected


# The kubeconfig.


def test_no_kubeconfig_anywhere_says_where_it_looked_and_how_to_get_one() -> None:
    problem = preflight.resolve_kube_target(facts(), FakeHost())
    assert isinstance(problem, Problem)
    assert problem.what == (
        "no kubeconfig for stack dev: kubernetes:kubeconfig and KUBECONFIG are not set, and there is no ~/.kube/config."
    )
    assert problem.ways[1:] == (
        preflight.SANDBOX,
        "or point stack dev at a cluster: `pulumi config set kubernetes:kubeconfig <path>` "
        "and/or `pulumi config set kubernetes:context <context>`",
    )


def test_kubeconfig_naming_missing_files_is_refused() -> None:
    problem = preflight.resolve_kube_target(facts(), FakeHost(env={"KUBECONFIG": "/a:/b"}))
    assert isinstance(problem, Problem)
    assert problem.what == (
        "no kubeconfig for stack dev: kubernetes:kubeconfig is not set, and KUBECONFIG=/a:/b names no file that exists."
    )


def test_kubeconfig_files_merge_as_kubectl_merges_them() -> None:
    files = {Path("/a"): kubeconfig("one", current="two"), Path("/b"): kubeconfig("two", server="https://10.0.0.2")}
    target = preflight.resolve_kube_target(facts(), FakeHost(env={"KUBECONFIG": "/a:/b"}, files=files))
    assert isinstance(target, KubeTarget)
    assert (target.context, target.server, target.contexts) == ("two", "https://10.0.0.2", ("one", "two"))


def test_the_stacks_context_wins_over_the_current_context() -> None:
    host = FakeHost(files={HOME / ".kube" / "config": kubeconfig("a", "b", current="a")})
    target = preflight.resolve_kube_target(facts(**{"kubernetes:context": "b"}), host)
    assert isinstance(target, KubeTarget)
    assert (target.context, target.source) == ("b", "~/.kube/config")


def test_an_unknown_context_is_refused_with_the_ones_there_are() -> None:
    host = FakeHost(files={HOME / ".kube" / "config": kubeconfig("a", "b", current="a")})
    problem = preflight.resolve_kube_target(facts(**{"kubernetes:context": "c"}), host)
    assert isinstance(problem, Problem)
    assert problem.what == "the context 'c' (kubernetes:context (Pulumi.dev.yaml)) is not in ~/.kube/config."
    assert (
        problem.ways[0] == "choose one that is: `pulumi config set kubernetes:context <context>` (its contexts: a, b)"
    )


def test_no_current_context_is_refused() -> None:
    host = FakeHost(files={HOME / ".kube" / "config": kubeconfig("a")})
    problem = preflight.resolve_kube_target(facts(), host)
    assert isinstance(problem, Problem)
    assert problem.what == "~/.kube/config selects no context (no current-context), and kubernetes:context is not set."


def test_the_stacks_kubeconfig_path_is_read() -> None:
    host = FakeHost(files={Path("/k/config"): kubeconfig("kind-demo", current="kind-demo")})
    target = preflight.resolve_kube_target(facts(**{"kubernetes:kubeconfig": "/k/config"}), host)
    assert isinstance(target, KubeTarget)
    assert (target.context, target.source) == ("kind-demo", "kubernetes:kubeconfig (Pulumi.dev.yaml) = /k/config")


def test_the_stacks_kubeconfig_may_be_the_content_itself() -> None:
    content = kubeconfig("inline", current="inline")
    target = preflight.resolve_kube_target(facts(**{"kubernetes:kubeconfig": content}), FakeHost())
    assert isinstance(target, KubeTarget)
    assert (target.context, target.source) == ("inline", "kubernetes:kubeconfig (Pulumi.dev.yaml), inline")


def test_a_stack_kubeconfig_that_is_neither_file_nor_content_is_refused() -> None:
    problem = preflight.resolve_kube_target(facts(**{"kubernetes:kubeconfig": "/nowhere"}), FakeHost())
    assert isinstance(problem, Problem)
    assert problem.what == (
        "kubernetes:kubeconfig (Pulumi.dev.yaml) is '/nowhere': no such file, and not a kubeconfig's content either."
    )


def test_a_secret_kubeconfig_is_not_checked_and_the_report_says_so() -> None:
    stack = facts(**{"kubernetes:kubeconfig": {"secure": "v1:abc"}})
    report = run(ready_host(), stack)
    assert (report.passed, report.notes) == (
        True,
        ("kubernetes:kubeconfig is a secret: the cluster is not checked before the update",),
    )


def test_minikube_is_known_by_its_extension_whatever_the_context_is_called() -> None:
    document = yaml.safe_load(kubeconfig("dev-cluster", current="dev-cluster"))
    document["clusters"][0]["cluster"]["extensions"] = [
        {"name": "cluster_info", "extension": {"provider": "minikube.sigs.k8s.io", "version": "v1.34.0"}}
    ]
    host = FakeHost(files={HOME / ".kube" / "config": yaml.safe_dump(document)})
    target = preflight.resolve_kube_target(facts(), host)
    assert isinstance(target, KubeTarget)
    assert target.minikube is True


# The API server.


def test_a_closed_api_server_port_is_refused_with_the_context_and_how_to_start_it() -> None:
    report = run(ready_host("kind-demo", answers={f"unix://{DEFAULT_SOCKET}": Answer(200, ENGINE_VERSION)}))
    problem = report.problems[0]
    assert problem.message() == (
        "error: [api-server] the API server of context 'kind-demo' (https://127.0.0.1:6443, from ~/.kube/config) "
        "does not answer: connection refused, within 3 s.\n"
        "  - start it: kind's node containers stop with Docker: `docker start demo-control-plane`, "
        "or make it again: `kind create cluster --name demo`\n"
        "  - or use another context: `pulumi config set kubernetes:context <context>`\n"
        f"  - {preflight.SANDBOX}"
    )


def test_an_api_server_that_refuses_anonymous_requests_answers() -> None:
    target = KubeTarget("c", "c", SERVER, "~/.kube/config")
    assert preflight.check_api_server(target, Answer(401, "Unauthorized")) is None


def test_an_api_server_that_is_not_ready_is_refused_with_its_reason() -> None:
    target = KubeTarget("c", "c", SERVER, "~/.kube/config", contexts=("c", "d"))
    problem = preflight.check_api_server(target, Answer(500, "[-]etcd failed\nreadyz check failed"))
    assert problem is not None
    assert problem.what.endswith("answers /readyz with HTTP 500: it is not ready (readyz check failed).")
    assert (
        problem.ways[1]
        == "or use another context: `pulumi config set kubernetes:context <context>` (others in the kubeconfig: d)"
    )


def test_the_probe_trusts_the_kubeconfigs_certificate_authority() -> None:
    ca = "-----BEGIN CERTIFICATE-----\nMII...\n-----END CERTIFICATE-----\n"
    data = base64.b64encode(ca.encode()).decode()
    config = {HOME / ".kube" / "config": kubeconfig("c", current="c", **{"certificate-authority-data": data})}
    host = ready_host("c", files=config)
    run(host)
    assert (f"{SERVER}/readyz", Tls(ca_pem=ca)) in host.requests


# The Docker engine.


def test_the_docker_endpoint_is_the_stacks_then_docker_host_then_the_context_then_the_default() -> None:
    digest = hashlib.sha256(b"colima").hexdigest()
    meta = {"Name": "colima", "Endpoints": {"docker": {"Host": "unix:///home/user/.colima/docker.sock"}}}
    files = {
        HOME / ".docker" / "config.json": json.dumps({"currentContext": "colima"}),
        HOME / ".docker" / "contexts" / "meta" / digest / "meta.json": json.dumps(meta),
    }
    found = [
        docker_engine.resolve_docker_endpoint(FakeHost(files=files), "tcp://10.0.0.9:2375", "docker:host (here)"),
        docker_engine.resolve_docker_endpoint(FakeHost(env={"DOCKER_HOST": "unix:///s.sock"}, files=files)),
        docker_engine.resolve_docker_endpoint(FakeHost(files=files)),
        docker_engine.resolve_docker_endpoint(FakeHost()),
    ]
    assert [(e.host, e.source) for e in found] == [
        ("tcp://10.0.0.9:2375", "docker:host (here)"),
        ("unix:///s.sock", "DOCKER_HOST"),
        ("unix:///home/user/.colima/docker.sock", "docker context 'colima'"),
        ("unix:///var/run/docker.sock", "the default: DOCKER_HOST is not set"),
    ]


def test_the_engines_platform_is_its_os_and_architecture() -> None:
    host = FakeHost(answers={"unix:///s.sock": Answer(200, json.dumps({"Os": "linux", "Arch": "arm64"}))})
    assert docker_engine.probe_docker(DockerEndpoint("unix:///s.sock", "DOCKER_HOST"), host) == Engine("linux/arm64")


def test_the_program_builds_for_the_engines_platform() -> None:
    host = FakeHost(env={"DOCKER_HOST": "unix:///s.sock"}, answers={"unix:///s.sock": Answer(200, ENGINE_VERSION)})
    assert docker_engine.engine_platform(host) == "linux/amd64"


def test_an_engine_that_does_not_answer_has_no_platform() -> None:
    assert docker_engine.engine_platform(FakeHost(env={"DOCKER_HOST": "unix:///s.sock"})) is None


def test_a_simulated_engine_answers_without_asking_one() -> None:
    host = FakeHost(env={"DOCKER_HOST": "unix:///s.sock"})
    with docker_engine.simulated_engine("linux/riscv64"):
        platform = docker_engine.engine_platform(host)
    assert (platform, host.requests) == ("linux/riscv64", [])


def test_no_engine_when_the_update_builds_is_refused_with_the_ways_forward() -> None:
    host = ready_host(env={"DOCKER_HOST": "unix:///tmp/no-docker.sock"})
    problem = only(run(host))
    assert problem.message() == (
        "error: [docker] this update builds k8s-demo:0.2 (imageTag is the app's version), and no Docker engine "
        "answers at unix:///tmp/no-docker.sock (DOCKER_HOST): connection refused.\n"
        "  - start Docker, or install it: https://docs.docker.com/engine/install/\n"
        f"  - {preflight.SANDBOX}\n"
        "  - or deploy an image that exists, without a build: `pulumi config set imageTag <tag>` (see `make history`)"
    )


def test_no_engine_is_fine_when_nothing_is_built() -> None:
    host = ready_host(answers={f"{SERVER}/readyz": Answer(200, "ok")})
    report = run(host, facts(**{"k8s-demo:imageTag": "0.1"}))
    assert (report.passed, [url for url, _ in host.requests]) == (True, [f"{SERVER}/readyz"])


# Does the cluster get the image?


@pytest.mark.parametrize("context", ["docker-desktop", "kwok-k8s-demo"])
def test_a_cluster_on_the_same_engine_passes(context: str) -> None:
    assert run(ready_host(context)) == preflight.Report()


def test_kind_with_kind_on_path_gets_the_image_loaded() -> None:
    host = ready_host("kind-demo", programs={"pulumi": "/usr/bin/pulumi", "kind": "/usr/bin/kind"})
    report = run(host)
    assert report.kind_load == KindLoad("k8s-demo:0.2", "demo", "linux/amd64")
    assert report.kind_load.commands == (
        ("docker", "build", "--platform", "linux/amd64", "-t", "k8s-demo:0.2", "app"),
        ("kind", "load", "docker-image", "k8s-demo:0.2", "--name", "demo"),
    )


def test_kind_without_kind_on_path_is_refused_with_the_exact_command() -> None:
    problem = only(run(ready_host("kind-demo")))
    assert problem.what == (
        "kind cluster 'demo' has an image store of its own: k8s-demo:0.2, built by the engine at "
        "unix:///var/run/docker.sock, must be loaded into it (`docker build --platform linux/amd64 -t k8s-demo:0.2 "
        "app && kind load docker-image k8s-demo:0.2 --name demo`), and `kind` is not on PATH."
    )


def test_minikube_without_its_docker_env_is_refused_with_the_command_that_sets_it() -> None:
    problem = only(run(ready_host("minikube")))
    assert problem.ways[0] == (
        "build in minikube's engine: `eval $(minikube -p minikube docker-env)`, then run the command again in that "
        "shell (https://minikube.sigs.k8s.io/docs/handbook/pushing/)"
    )


def test_minikube_with_its_docker_env_passes() -> None:
    host = ready_host(
        "minikube", env={"DOCKER_HOST": "unix:///var/run/docker.sock", "MINIKUBE_ACTIVE_DOCKERD": "minikube"}
    )
    assert run(host).passed is True


def test_another_cluster_needs_a_registry_and_says_which_key_sets_it() -> None:
    problem = only(run(ready_host("prod-eks")))
    assert problem.ways[0] == (
        "push it to a registry the cluster pulls from: `pulumi config set imageRepository <registry host>/k8s-demo` "
        "(then `docker login <registry host>`)"
    )


def test_a_pushed_image_reaches_any_cluster() -> None:
    stack = facts(**{"k8s-demo:imageRepository": "registry.example.com/team/k8s-demo"})
    assert run(ready_host("prod-eks"), stack).passed is True


def test_a_skipped_check_is_not_run() -> None:
    assert run(ready_host("prod-eks"), skip=("image",)).passed is True


# The whole.


def test_independent_problems_are_reported_together_and_nothing_changed_is_said_last() -> None:
    host = FakeHost(env={"DOCKER_HOST": "unix:///tmp/no-docker.sock"})
    report = run(host)
    assert [p.check for p in report.problems] == ["pulumi", "kubeconfig", "docker"]
    assert report.text().endswith("\nNothing was changed (pre-flight).")


def test_main_refuses_an_unknown_check_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight.main(["check", "--skip", "imag"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown pre-flight check imag; the checks: python, pulumi, kubeconfig, api-server, docker, image\n"
    )


def test_load_facts_reads_the_stack_file_over_the_defaults() -> None:
    stack = preflight.load_facts(ROOT, "prod")
    assert (stack.app_marker, stack.config["k8s-demo:imageRepository"]) == (
        "app/VERSION",
        yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["k8s-demo:imageRepository"],
    )


# The real transports, against servers on 127.0.0.1 and a unix socket of the test's own.


def test_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert RealHost().get(f"https://127.0.0.1:{port}/readyz", Tls(), 2.0) == Answer(error="connection refused")


class _Version(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ENGINE_VERSION.encode() if self.path == "/version" else b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # the base class names it format
        pass

    def address_string(self) -> str:
        return "unix"


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "docker.sock"
    server = _UnixServer(str(path), _Version)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_the_engine_is_asked_over_its_unix_socket(engine_socket: Path) -> None:
    endpoint = DockerEndpoint(f"unix://{engine_socket}", "DOCKER_HOST")
    assert docker_engine.probe_docker(endpoint, RealHost()) == Engine("linux/amd64")


def test_make_ups_flags_are_checked_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight.main(["check", "--for", "up", "--", "--yes", "--plan", "plan.json"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: [flags] make up cannot pass --plan on: make up runs the update it previews; "
        "`pulumi up --plan <file>` applies a saved plan."
    )


def _script(directory: Path, name: str, status: int) -> None:
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{directory}/calls"\nexit {status}\n', encoding="utf-8")
    path.chmod(0o755)


def test_the_kind_load_builds_then_loads(tmp_path: Path) -> None:
    _script(tmp_path, "docker", 0)
    _script(tmp_path, "kind", 0)
    load = KindLoad("k8s-demo:0.2", "demo", "linux/amd64")
    assert preflight.run_kind_load(load, RealHost({"PATH": str(tmp_path)}), tmp_path) == 0
    assert (tmp_path / "calls").read_text(encoding="utf-8").splitlines() == [
        "docker build --platform linux/amd64 -t k8s-demo:0.2 app",
        "kind load docker-image k8s-demo:0.2 --name demo",
    ]


def test_a_failed_build_loads_nothing_and_fails_with_its_status(tmp_path: Path) -> None:
    _script(tmp_path, "docker", 3)
    _script(tmp_path, "kind", 0)
    load = KindLoad("k8s-demo:0.2", "demo", None)
    assert preflight.run_kind_load(load, RealHost({"PATH": str(tmp_path)}), tmp_path) == 3
    assert (tmp_path / "calls").read_text(encoding="utf-8").splitlines() == ["docker build -t k8s-demo:0.2 app"]


# The README's Local clusters section says what the pre-flight does.

README = (ROOT / "README.md").read_text(encoding="utf-8")
LOCAL_CLUSTERS = README[README.index("## Local clusters") : README.index("## Pull request previews")]


def test_the_readmes_kind_paragraph_has_the_commands_make_up_runs() -> None:
    assert KindLoad("k8s-demo:0.2", "kind", "linux/amd64").shell() in " ".join(LOCAL_CLUSTERS.split())


def test_the_readmes_minikube_paragraph_has_the_command_the_refusal_names() -> None:
    problem = only(run(ready_host("minikube")))
    command = problem.ways[0].split("`")[1]
    assert (command, f"`{command}`" in LOCAL_CLUSTERS) == ("eval $(minikube -p minikube docker-env)", True)


def test_the_readmes_registry_key_and_skip_are_the_ones_the_refusal_names() -> None:
    problem = only(run(ready_host("prod-eks")))
    named = [way.split("`")[1] for way in problem.ways]
    flat = " ".join(LOCAL_CLUSTERS.split())
    assert [(command, f"`{command}`" in flat) for command in named] == [
        ("pulumi config set imageRepository <registry host>/k8s-demo", True),
        ("make up PREFLIGHT_SKIP=image", True),
    ]


@pytest.mark.parametrize("context", ["docker-desktop", "rancher-desktop", "orbstack", "colima"])
def test_the_readmes_same_engine_contexts_pass(context: str) -> None:
    assert (context in LOCAL_CLUSTERS, run(ready_host(context)).passed) == (True, True)


def test_the_cli_is_asked_its_version_once_per_binary(tmp_path: Path) -> None:
    binary = tmp_path / "pulumi"
    binary.write_text("v1", encoding="utf-8")
    cache = preflight.VersionCache(tmp_path / "cache.json")
    asked = ready_host(programs={"pulumi": str(binary)}, commands={(str(binary), "version"): Completed(0, "v3.260.0")})
    unasked = ready_host(programs={"pulumi": str(binary)}, commands={})
    assert (preflight.check_pulumi(asked, TESTED, cache), preflight.check_pulumi(unasked, TESTED, cache)) == (
        None,
        None,
    )


def test_a_replaced_cli_is_asked_again(tmp_path: Path) -> None:
    binary = tmp_path / "pulumi"
    binary.write_text("v1", encoding="utf-8")
    cache = preflight.VersionCache(tmp_path / "cache.json")
    host = ready_host(programs={"pulumi": str(binary)}, commands={(str(binary), "version"): Completed(0, "v3.260.0")})
    preflight.check_pulumi(host, TESTED, cache)
    binary.write_text("v2, longer", encoding="utf-8")
    host.commands = {(str(binary), "version"): Completed(0, "v3.100.0")}
    problem = preflight.check_pulumi(host, TESTED, cache)
    assert problem is not None
    assert problem.what.startswith(f"the Pulumi CLI at {binary} is v3.100.0;")


def test_the_kind_load_builds_for_the_configured_platform() -> None:
    host = ready_host("kind-demo", programs={"pulumi": "/usr/bin/pulumi", "kind": "/usr/bin/kind"})
    report = run(host, facts(**{"k8s-demo:buildPlatform": "linux/arm64"}))
    assert report.kind_load == KindLoad("k8s-demo:0.2", "demo", "linux/arm64")

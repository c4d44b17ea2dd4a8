"""The four GitHub workflows, run for real by act on this machine (``make workflows``).

Each event is the one GitHub would send, from a payload in ``tests/e2e/events/``;
each run gets the workflows GitHub would trigger for it, side by side, with the
secrets pointing at a sandbox cluster of this file's own (kwok nodes, its own
Docker engine), a file state backend and a passphrase, and with
``GITHUB_API_URL`` pointing at the GitHub API stand-in. In order, as on a
repository:

1. a push to main: ``test.yml`` and ``deploy.yml`` (dev released);
2. pull request 7 opened (app 0.3): ``preview.yml`` and ``review-stack.yml``;
3. pull request 7 synchronized (app 0.4): the same, editing the comments;
4. a maintainer points dev and prod at a registry of this file's own
   (``sandbox/sandbox.sh registry``) and releases dev by hand (release 2, pushed);
5. at once: pull request 7 closed (``review-stack.yml``'s destroy), a fork's
   pull request 9 (both notices, with every secret offered to the runner), pull
   request 8 with a broken project default (both previews fail, saying why),
   and the promotion of dev's release 2 to prod (``promote.yml``, run by hand);
6. the drift watch (``drift.yml``) on its schedule, after someone scaled dev
   behind Pulumi's back: it opens dev's drift issue and closes prod's old one;
   then run by hand after a second change: it updates dev's issue.

The assertions read what a user would: the pull request's comments and the
issues (the API stand-in's), ``make pr-comment`` / ``make history`` / ``make
drift`` / ``pulumi stack ls`` run as a user runs them, and the cluster through
kubectl.
"""

from __future__ import annotations

import difflib
import json
import secrets as token_source
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.github_api import ACTIONS_BOT, Comment, GitHubServer, Issue, PullRequest, Request, Token, serving
from tests.e2e.sandbox import REPO, Cluster, running_cluster, tools_built, tools_dir
from tests.e2e.test_e2e_registry import Registry
from tests.e2e.workflow_runner import EVENTS_DIR, Run, RunnerMachine, build_act, checkout, event_name, triggered

pytestmark = pytest.mark.workflows

PR = 7
BROKEN_PR = 8
FORK_PR = 9
DEPLOYMENT = "k8s-demo-deployment"
#: The dev stack's replicas (Pulumi.dev.yaml).
DEV_REPLICAS = 10
APP_VERSION = (REPO / "app" / "VERSION").read_text(encoding="utf-8").strip()
#: Pull request 7's app version when opened, then after its second push.
OPENED_VERSION, SYNCED_VERSION = "0.3", "0.4"
#: Pull request 8 breaks a project default every stack gets: minReadySeconds must be >= 0.
BROKEN_DEFAULT = (
    "    default: 3\n    description: Seconds a new pod",
    "    default: -1\n    description: Seconds a new pod",
)
#: Where the jobs' results and times go (build/ is not committed).
SUMMARY = REPO / "build" / "workflows" / "runs.txt"
#: Where each act run's JSON log is copied at the end (one file per event and workflow).
LOGS = REPO / "build" / "workflows" / "logs"
#: Seconds each operator command run as a user (make pr-comment, make history) may take.
COMMAND_TIMEOUT = 300
#: The prod stack's replicas (Pulumi.prod.yaml).
PROD_REPLICAS = 4
#: The example registry Pulumi.prod.yaml names; the repository here names its own.
EXAMPLE_REGISTRY = "registry.example.com/k8s-demo/k8s-demo"
#: dev's replicas as someone scales it behind Pulumi's back before each drift watch run.
DRIFTED_REPLICAS = (3, 5)


def marker(stack: str) -> str:
    """The first line of a stack's comment (ops/preview writes it)."""
    return f"<!-- k8s-demo-preview:{stack} -->"


@dataclass
class Repository:
    """The repository on this machine: the sandbox, the API stand-in, the runner and the secrets it is given."""

    cluster: Cluster
    api: GitHubServer
    runner: RunnerMachine
    registry: Registry
    secrets: dict[str, str]
    workdir: Path
    full_name: str
    #: Every run so far: (event payload, workflow file, what act did).
    history: list[tuple[str, str, Run]] = field(default_factory=list)

    def branch(self, name: str, edits: Mapping[str, str] | None = None) -> Path:
        """A branch's checkout: this work tree with ``edits`` (path -> content), committed."""
        return checkout(REPO, self.workdir / "branches" / name, edits)

    def stack_files(self) -> dict[str, str]:
        """Pulumi.dev.yaml and Pulumi.prod.yaml naming this repository's registry (``imageRepository``)."""
        dev = (REPO / "Pulumi.dev.yaml").read_text(encoding="utf-8")
        prod = (REPO / "Pulumi.prod.yaml").read_text(encoding="utf-8")
        assert EXAMPLE_REGISTRY in prod
        return {
            "Pulumi.dev.yaml": f"{dev.rstrip()}\n  k8s-demo:imageRepository: {self.registry.repository}\n",
            "Pulumi.prod.yaml": prod.replace(EXAMPLE_REGISTRY, self.registry.repository),
        }

    def push(self, event: str, head: Path) -> dict[str, Run]:
        """Send the event (a file in tests/e2e/events/): the workflows GitHub would run for it, side by side."""
        return self.push_together((event, head))[0]

    def push_together(self, *events: tuple[str, Path]) -> list[dict[str, Run]]:
        """Send events of different pull requests at once, as GitHub runs them: every workflow side by side.

        test.yml runs on the push only: on a pull request it runs the same job (`make test`) again.
        """
        jobs = []
        for event, head in events:
            payload = EVENTS_DIR / event
            body = json.loads(payload.read_text(encoding="utf-8"))
            kind = event_name(payload)
            workflows = [w for w in triggered(kind, body) if kind == "push" or w != "test.yml"]
            jobs.append([(w, kind, payload, head) for w in workflows])
        with ThreadPoolExecutor(max_workers=sum(map(len, jobs))) as pool:
            run = self.runner.run
            futures = [{w: pool.submit(run, w, k, event, head, self.secrets) for w, k, event, head in r} for r in jobs]
            results = [{w: f.result() for w, f in r.items()} for r in futures]
        for (event, _), runs in zip(events, results, strict=True):
            self.history += [(event, w, run) for w, run in runs.items()]
        return results

    def summary(self) -> str:
        """One line per job that ran: event, job, result, its seconds and its act run's."""
        lines = [f"{'event':<34} {'job':<26} {'result':<8} {'job s':>6} {'run s':>6}"]
        for event, _, run in self.history:
            for job in run.jobs.values():
                lines.append(f"{event:<34} {job.name:<26} {job.result:<8} {job.seconds:>6} {run.seconds:>6.0f}")
        return "\n".join(lines) + "\n"

    def user_env(self) -> dict[str, str]:
        """A user's shell on the same backend, cluster and engine (the runner's settings, the sandbox's CLI)."""
        env = self.runner.environment()
        env.update(
            {
                "PATH": f"{tools_dir() / 'bin'}:{env['PATH']}",
                "PULUMI_BACKEND_URL": self.secrets["PULUMI_BACKEND_URL"],
                "PULUMI_CONFIG_PASSPHRASE": self.secrets["PULUMI_CONFIG_PASSPHRASE"],
                "KUBECONFIG": str(self.cluster.kubeconfig),
            }
        )
        env.pop("BASH_ENV")
        return env

    def make(self, head: Path, *args: str, allowed: tuple[int, ...] = (0,)) -> str:
        """``make <args>`` in a user's copy of the branch (with the suite's venv as its .venv); its stdout.
        Fails unless it exits with one of ``allowed``."""
        copy = self.workdir / "user" / head.name
        if not copy.exists():
            shutil.copytree(head, copy, ignore=shutil.ignore_patterns(".git"))
            (copy / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        done = subprocess.run(
            ["make", "--silent", "--no-print-directory", *args],
            cwd=copy,
            env=self.user_env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert done.returncode in allowed, f"make {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def pr_comment(self, head: Path, stack: str) -> str:
        """``make pr-comment STACK=<stack>`` on the branch, as a user checks the comment before pushing."""
        out = self.workdir / "user-comments" / f"{head.name}-{stack}-{time.monotonic_ns()}.md"
        self.make(head, "pr-comment", f"STACK={stack}", f"OUT={out}")
        return out.read_text(encoding="utf-8")

    def stacks(self) -> set[str]:
        """``pulumi stack ls`` of the backend the workflows use."""
        done = subprocess.run(
            [str(tools_dir() / "bin" / "pulumi"), "stack", "ls", "--json"],
            cwd=REPO,
            env=self.user_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return {s["name"] for s in json.loads(done.stdout)}

    def comments(self, number: int) -> list[Comment]:
        return self.api.state.on_pull_request(self.full_name, number)

    def issues(self) -> list[Issue]:
        """The repository's issues (copies: later runs do not change them)."""
        return [Issue(**{**vars(i), "labels": list(i.labels)}) for i in self.api.state.issues_of(self.full_name)]

    def requests(self, number: int) -> list[Request]:
        """The API requests about pull request ``number``: its comment list, or one of its comments."""
        ids = {str(c.id) for c in self.comments(number)}
        return [
            r
            for r in self.api.state.recorded()
            if r.path.endswith(f"/issues/{number}/comments") or r.path.rsplit("/", 1)[-1] in ids
        ]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    if not tools_built():
        pytest.fail(f"sandbox tools are not built in {tools_dir()}: run `make sandbox-tools` first")
    SUMMARY.unlink(missing_ok=True)
    workdir = tmp_path_factory.mktemp("workflows")
    act = build_act()
    event = json.loads((EVENTS_DIR / "push-main.json").read_text(encoding="utf-8"))
    full_name = event["repository"]["full_name"]
    token = token_source.token_hex(16)
    (workdir / "state").mkdir()
    registry = Registry(workdir / "registry")
    with (
        running_cluster(f"k8s-demo-wf-{token[:6]}", workdir / "kwok") as cluster,
        serving({token: Token(ACTIONS_BOT)}) as api,
    ):
        runner = RunnerMachine(workdir / "runner", api.url, cluster.docker_host, act)
        registry.start()
        secrets = {
            "KUBECONFIG_DATA": cluster.kubeconfig.read_text(encoding="utf-8"),
            "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": token_source.token_hex(16),
            "GITHUB_TOKEN": token,
        }
        repository = Repository(cluster, api, runner, registry, secrets, workdir, full_name)
        # The pull requests of the payloads, which the issues API lists among the issues.
        for path in sorted(EVENTS_DIR.glob("pull_request-*.json")):
            pull = json.loads(path.read_text(encoding="utf-8"))["pull_request"]
            if (full_name, pull["number"]) not in api.state.issues:
                title, author = pull.get("title", ""), pull["user"]["login"]
                api.state.add_issue(full_name, title, "", author, [], number=pull["number"], pull_request=True)
        try:
            yield repository
        finally:
            registry.stop()
            # make workflows prints it after the tests.
            SUMMARY.parent.mkdir(parents=True, exist_ok=True)
            SUMMARY.write_text(repository.summary(), encoding="utf-8")
            # Each act run's JSON log, kept for a look after the run (pytest removes old temporary dirs).
            shutil.rmtree(LOGS, ignore_errors=True)
            if (runner.workdir / "logs").is_dir():
                shutil.copytree(runner.workdir / "logs", LOGS)


def deployment(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.get("deployment", namespace, DEPLOYMENT)


def rolled_out(d: dict[str, Any], replicas: int) -> bool:
    """`kubectl rollout status`'s "successfully rolled out" for ``replicas``."""
    status = d.get("status", {})
    return bool(
        d["spec"]["replicas"] == replicas
        and status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("replicas") == replicas
    )


def image_of(d: dict[str, Any]) -> str:
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


# 1. A push to main -----------------------------------------------------------------------------


@dataclass
class Pushed:
    runs: dict[str, Run]
    history: list[dict[str, Any]]
    deployment: dict[str, Any]


@pytest.fixture(scope="module")
def pushed(repository: Repository) -> Pushed:
    main = repository.branch("main")
    runs = repository.push("push-main.json", main)
    history = json.loads(repository.make(main, "history", "STACK=dev", "JSON=1"))
    return Pushed(runs, history, deployment(repository.cluster, "k8s-demo-dev"))


def test_push_runs_test_and_deploy(pushed: Pushed) -> None:
    assert sorted(pushed.runs) == ["deploy.yml", "test.yml"]


def test_push_test_job_passes(pushed: Pushed) -> None:
    job = pushed.runs["test.yml"].job("test")
    assert job.result == "success", job.log[-4000:]


def test_push_deploy_job_passes(pushed: Pushed) -> None:
    job = pushed.runs["deploy.yml"].job("up")
    assert job.result == "success", job.log[-4000:]


def test_push_releases_dev_once_with_the_app_version(pushed: Pushed) -> None:
    assert [(r["release"], r["imageTag"], r["result"]) for r in pushed.history] == [(1, APP_VERSION, "succeeded")]


def test_push_completes_the_dev_rollout(pushed: Pushed) -> None:
    assert rolled_out(pushed.deployment, DEV_REPLICAS), pushed.deployment.get("status")
    assert image_of(pushed.deployment) == f"k8s-demo:{APP_VERSION}"


# 2. Pull request 7 opened ----------------------------------------------------------------------


def release_branch(repository: Repository, version: str) -> Path:
    return repository.branch(f"release-{version}", {"app/VERSION": f"{version}\n"})


@dataclass
class PullRequestEvent:
    runs: dict[str, Run]
    head: Path
    comments: list[Comment]
    expected_dev_comment: str
    stacks: set[str]
    review_deployment: dict[str, Any]
    requests: list[Request]


def pull_request_event(repository: Repository, event: str, version: str) -> PullRequestEvent:
    head = release_branch(repository, version)
    runs = repository.push(event, head)
    # Kept for a look after a failure: what was posted, next to make pr-comment's (user-comments/).
    for c in repository.comments(PR):
        (repository.workdir / f"posted-{Path(event).stem}-{c.id}.md").write_text(c.body, encoding="utf-8")
    return PullRequestEvent(
        runs=runs,
        head=head,
        comments=[Comment(**vars(c)) for c in repository.comments(PR)],
        # Right after the run: dev has not changed since the job's preview.
        expected_dev_comment=repository.pr_comment(head, "dev"),
        stacks=repository.stacks(),
        review_deployment=deployment(repository.cluster, f"k8s-demo-pr-{PR}"),
        requests=repository.requests(PR),
    )


@pytest.fixture(scope="module")
def opened(repository: Repository, pushed: Pushed) -> PullRequestEvent:
    # Someone quotes the marker in a comment of their own: the action must leave it alone.
    repository.api.state.add_comment(repository.full_name, PR, f"{marker('dev')}\nquoted by a person", "octocat")
    return pull_request_event(repository, "pull_request-opened.json", OPENED_VERSION)


def bot_comments(comments: list[Comment], stack: str) -> list[Comment]:
    return [c for c in comments if c.login == ACTIONS_BOT and c.body.startswith(marker(stack))]


def test_opened_runs_preview_and_review_stack(opened: PullRequestEvent) -> None:
    assert sorted(opened.runs) == ["preview.yml", "review-stack.yml"]


def test_opened_preview_job_passes(opened: PullRequestEvent) -> None:
    job = opened.runs["preview.yml"].job("preview")
    assert job.result == "success", job.log[-4000:]


def test_opened_review_stack_job_passes(opened: PullRequestEvent) -> None:
    job = opened.runs["review-stack.yml"].job("up")
    assert job.result == "success", job.log[-4000:]


def same_text(posted: list[Comment], expected: str) -> str:
    """ "" when ``posted`` is one comment whose body is ``expected``, else what differs, as a unified diff."""
    if [c.body for c in posted] == [expected]:
        return ""
    if len(posted) != 1:
        return f"{len(posted)} comments posted, not 1: {[c.body[:200] for c in posted]}"
    lines = difflib.unified_diff(
        expected.splitlines(), posted[0].body.splitlines(), "make pr-comment", "posted", lineterm=""
    )
    return "\n".join(lines)


def test_opened_posts_one_dev_comment_equal_to_make_pr_comment(opened: PullRequestEvent) -> None:
    assert same_text(bot_comments(opened.comments, "dev"), opened.expected_dev_comment) == ""


def test_opened_dev_comment_names_the_new_version(opened: PullRequestEvent) -> None:
    body = bot_comments(opened.comments, "dev")[0].body
    assert f"- `k8s-demo:{APP_VERSION}` -> `k8s-demo:{OPENED_VERSION}`" in body.splitlines()


def test_opened_posts_one_review_stack_comment(opened: PullRequestEvent) -> None:
    assert len(bot_comments(opened.comments, f"pr-{PR}")) == 1


def test_opened_leaves_the_persons_comment_alone(opened: PullRequestEvent) -> None:
    assert [c.body for c in opened.comments if c.login == "octocat"] == [f"{marker('dev')}\nquoted by a person"]


def test_opened_creates_the_review_stack(opened: PullRequestEvent) -> None:
    assert f"pr-{PR}" in opened.stacks


def test_opened_review_stack_runs_one_replica_of_the_new_version(opened: PullRequestEvent) -> None:
    d = opened.review_deployment
    assert d["metadata"]["namespace"] == f"k8s-demo-pr-{PR}"
    assert rolled_out(d, 1), d.get("status")
    assert image_of(d) == f"k8s-demo:{OPENED_VERSION}"


# 3. Pull request 7 synchronized ----------------------------------------------------------------


@pytest.fixture(scope="module")
def synchronized(repository: Repository, opened: PullRequestEvent) -> PullRequestEvent:
    return pull_request_event(repository, "pull_request-synchronize.json", SYNCED_VERSION)


def preview_results(runs: dict[str, Run]) -> dict[str, str]:
    """The results of the two jobs that preview a stack: preview.yml's preview, review-stack.yml's up."""
    return {w: runs[w].job(job).result for w, job in (("preview.yml", "preview"), ("review-stack.yml", "up"))}


def test_synchronize_jobs_pass(synchronized: PullRequestEvent) -> None:
    logs = {w: r.output[-3000:] for w, r in synchronized.runs.items()}
    assert preview_results(synchronized.runs) == {"preview.yml": "success", "review-stack.yml": "success"}, logs


def test_synchronize_edits_the_dev_comment(opened: PullRequestEvent, synchronized: PullRequestEvent) -> None:
    before = bot_comments(opened.comments, "dev")
    after = bot_comments(synchronized.comments, "dev")
    assert [c.id for c in after] == [c.id for c in before]
    assert same_text(after, synchronized.expected_dev_comment) == ""


def test_synchronize_dev_comment_names_the_pushed_version(synchronized: PullRequestEvent) -> None:
    body = bot_comments(synchronized.comments, "dev")[0].body
    assert f"- `k8s-demo:{APP_VERSION}` -> `k8s-demo:{SYNCED_VERSION}`" in body.splitlines()


def test_synchronize_edits_the_review_stack_comment(opened: PullRequestEvent, synchronized: PullRequestEvent) -> None:
    before = bot_comments(opened.comments, f"pr-{PR}")
    after = bot_comments(synchronized.comments, f"pr-{PR}")
    assert [c.id for c in after] == [c.id for c in before]
    assert after[0].body != before[0].body


def test_synchronize_posts_no_second_comment(synchronized: PullRequestEvent) -> None:
    posts = [r for r in synchronized.requests if r.method == "POST"]
    patches = [r for r in synchronized.requests if r.method == "PATCH"]
    # Opened posted dev's and pr-7's; synchronize edited both.
    assert (len(posts), len(patches)) == (2, 2)
    assert len(synchronized.comments) == 3  # the person's, dev's, pr-7's


def test_synchronize_updates_the_review_stack(synchronized: PullRequestEvent) -> None:
    d = synchronized.review_deployment
    assert rolled_out(d, 1), d.get("status")
    assert image_of(d) == f"k8s-demo:{SYNCED_VERSION}"


# 4. Pull request 7 closed ----------------------------------------------------------------------


@dataclass
class Closed:
    runs: dict[str, Run]
    stacks: set[str]
    namespace_exists: bool


@pytest.fixture(scope="module")
def closed(together: Together) -> Closed:
    return together.closed


def test_closed_runs_only_review_stack(closed: Closed) -> None:
    assert sorted(closed.runs) == ["review-stack.yml"]


def test_closed_destroy_job_passes(closed: Closed) -> None:
    job = closed.runs["review-stack.yml"].job("destroy")
    assert job.result == "success", job.log[-4000:]


def test_closed_removes_the_review_stack(closed: Closed) -> None:
    assert f"pr-{PR}" not in closed.stacks
    assert "dev" in closed.stacks


def test_closed_deletes_the_namespace(closed: Closed) -> None:
    assert not closed.namespace_exists


# 5. A fork's pull request ----------------------------------------------------------------------


@dataclass
class Forked:
    runs: dict[str, Run]
    stacks: set[str]
    namespace_exists: bool
    requests: list[Request]


@pytest.fixture(scope="module")
def forked(together: Together) -> Forked:
    return together.forked


def test_fork_runs_only_the_notices(forked: Forked) -> None:
    ran = {(w, name.split("/", 1)[1], job.result) for w, run in forked.runs.items() for name, job in run.jobs.items()}
    assert ran == {("preview.yml", "fork-notice", "success"), ("review-stack.yml", "fork-notice", "success")}


def test_fork_notices_say_why(forked: Forked) -> None:
    notices = [a for run in forked.runs.values() for job in run.jobs.values() for a in job.annotations]
    assert [kind for kind, _ in notices] == ["notice", "notice"]
    assert all(text.startswith("Pull request from a fork: it gets no secrets") for _, text in notices)


def test_fork_steps_see_no_secret(repository: Repository, forked: Forked) -> None:
    environments = [env for run in forked.runs.values() for env in run.environments]
    assert environments, "the recorder saw no step: it cannot prove anything"
    seen = {
        name for name, value in repository.secrets.items() for env in environments for v in env.values() if value in v
    }
    assert seen == set()


def test_recorder_sees_a_secret_a_step_is_given(repository: Repository, opened: PullRequestEvent) -> None:
    """The recorder the fork's check relies on does see a secret where a step is given one."""
    environments = opened.runs["preview.yml"].environments
    kubeconfig = repository.secrets["KUBECONFIG_DATA"]
    assert any(env.get("KUBECONFIG_DATA") == kubeconfig for env in environments)


def test_fork_calls_no_api_and_creates_nothing(forked: Forked) -> None:
    assert (forked.requests, f"pr-{FORK_PR}" in forked.stacks, forked.namespace_exists) == ([], False, False)


# 6. A broken config in a pull request ----------------------------------------------------------


@dataclass
class Broken:
    runs: dict[str, Run]
    comments: list[Comment]
    namespace_exists: bool


@pytest.fixture(scope="module")
def broken(together: Together) -> Broken:
    return together.broken


@dataclass
class Main:
    """main once dev and prod name the repository's registry, and dev's release that pushed there."""

    head: Path
    #: The registry's digest of the app version's tag, which dev's release 2 pushed.
    digest: str

    def image(self, repository: Repository) -> str:
        """What dev's release 2 runs, and what prod gets: the pushed image by its digest."""
        return f"{repository.registry.repository}@{self.digest}"


@pytest.fixture(scope="module")
def registry_main(repository: Repository, pushed: Pushed) -> Main:
    """A maintainer points dev and prod at the registry (their stack files' imageRepository) and releases dev
    from main by hand, `make up STACK=dev`: that release pushes, so it can be promoted by digest. (By hand, not by
    another deploy.yml run, to keep the suite short.)
    Then, once before the first promotion, `make stack STACK=prod` (README, "From a pull request to prod")."""
    files = repository.stack_files()
    head = repository.branch("main-registry", files)
    # The same files on main as the API serves them, where the promotion proposes its pin.
    repository.api.state.seed_branch(repository.full_name, "main", {k: v.encode() for k, v in files.items()})
    repository.make(head, "up", "STACK=dev", "ARGS=--yes")
    repository.make(head, "stack", "STACK=prod")
    return Main(head, repository.registry.manifest_digest(APP_VERSION))


@dataclass
class Promoted:
    runs: dict[str, Run]
    history: list[dict[str, Any]]
    deployment: dict[str, Any]
    #: The pull requests opened through the API, and the stack file on each one's branch.
    pulls: list[tuple[PullRequest, Issue]]
    proposed: list[bytes | None]


@dataclass
class Together:
    """The four events sent at once: they touch different stacks, as on a busy repository."""

    closed: Closed
    forked: Forked
    broken: Broken
    promoted: Promoted


@pytest.fixture(scope="module")
def together(repository: Repository, synchronized: PullRequestEvent, registry_main: Main) -> Together:
    """Pull request 7 closed, a fork's pull request 9, pull request 8 with a broken config, and the promotion of
    dev's release 2 to prod, run by hand from main."""
    fork_head = repository.branch("fork-patch-1", {"app/VERSION": "0.9\n"})
    project = (REPO / "Pulumi.yaml").read_text(encoding="utf-8")
    assert BROKEN_DEFAULT[0] in project
    broken_head = repository.branch("broken-config", {"Pulumi.yaml": project.replace(*BROKEN_DEFAULT)})
    # GitHub withholds secrets from a fork's pull_request; offering the runner every one of them
    # proves the workflows themselves keep them from the fork's code.
    closing, forking, breaking, promoting = repository.push_together(
        ("pull_request-closed.json", synchronized.head),
        ("pull_request-fork.json", fork_head),
        ("pull_request-broken-config.json", broken_head),
        ("workflow_dispatch-promote.json", registry_main.head),
    )
    stacks = repository.stacks()
    exists = repository.cluster.exists
    prod_history = json.loads(repository.make(registry_main.head, "history", "STACK=prod", "JSON=1"))
    state = repository.api.state
    pulls = state.pull_requests(repository.full_name)
    proposed = [state.file_at(repository.full_name, pull.head, "Pulumi.prod.yaml") for pull, _ in pulls]
    return Together(
        Closed(closing, stacks, exists("namespace", f"k8s-demo-pr-{PR}")),
        Forked(forking, stacks, exists("namespace", f"k8s-demo-pr-{FORK_PR}"), repository.requests(FORK_PR)),
        Broken(breaking, repository.comments(BROKEN_PR), exists("namespace", f"k8s-demo-pr-{BROKEN_PR}")),
        Promoted(promoting, prod_history, deployment(repository.cluster, "k8s-demo-prod"), pulls, proposed),
    )


def test_broken_config_fails_both_preview_jobs(broken: Broken) -> None:
    assert preview_results(broken.runs) == {"preview.yml": "failure", "review-stack.yml": "failure"}


def test_broken_config_job_log_names_the_key_and_value(broken: Broken) -> None:
    log = broken.runs["preview.yml"].job("preview").log
    assert "minReadySeconds" in log, log[-4000:]
    assert "-1" in log, log[-4000:]


def test_broken_config_comment_names_the_key(broken: Broken) -> None:
    dev = bot_comments(broken.comments, "dev")
    assert len(dev) == 1
    assert "minReadySeconds" in dev[0].body


def test_broken_config_deploys_no_review_stack(broken: Broken) -> None:
    assert not broken.namespace_exists


# 7. The promotion of dev's release 2 to prod (run by hand) -----------------------------------------


@pytest.fixture(scope="module")
def promoted(together: Together) -> Promoted:
    return together.promoted


def test_promotion_dispatch_runs_only_promote(promoted: Promoted) -> None:
    assert sorted(promoted.runs) == ["promote.yml"]


def test_promotion_plan_then_promote_pass(promoted: Promoted) -> None:
    run = promoted.runs["promote.yml"]
    assert {name: job.result for name, job in run.jobs.items()} == {
        "promote/plan": "success",
        "promote/promote": "success",
    }, run.output[-4000:]


def test_promotion_plan_names_the_release_and_its_digest(registry_main: Main, promoted: Promoted) -> None:
    log = promoted.runs["promote.yml"].job("plan").log
    assert f"promoted from dev release 2, {registry_main.digest}" in log, log[-4000:]


def test_promotion_releases_prod_once_with_its_provenance(registry_main: Main, promoted: Promoted) -> None:
    assert [(r["release"], r["imageTag"], r["result"]) for r in promoted.history] == [(1, APP_VERSION, "succeeded")]
    assert promoted.history[0]["message"].startswith(f"promoted from dev release 2, {registry_main.digest}: ")


def test_promotion_deploys_prod_by_devs_digest(repository: Repository, registry_main: Main, promoted: Promoted) -> None:
    assert image_of(promoted.deployment) == registry_main.image(repository)
    assert rolled_out(promoted.deployment, PROD_REPLICAS), promoted.deployment.get("status")


def test_promotion_proposes_its_pin_in_one_pull_request_to_main(promoted: Promoted) -> None:
    opened = [(p.base, p.head.startswith("promote/prod-run-"), i.title, i.login, i.state) for p, i in promoted.pulls]
    assert opened == [("main", True, "prod: pin the image promoted from dev", ACTIONS_BOT, "open")]


def test_the_proposed_stack_file_pins_devs_digest_and_main_waits_for_the_merge(
    repository: Repository, registry_main: Main, promoted: Promoted
) -> None:
    proposed = promoted.proposed[0]
    assert proposed is not None
    config = yaml.safe_load(proposed)["config"]
    assert (config["k8s-demo:imageTag"], config["k8s-demo:imageDigest"]) == (APP_VERSION, registry_main.digest)
    main = repository.api.state.file_at(repository.full_name, "main", "Pulumi.prod.yaml")
    assert main == repository.stack_files()["Pulumi.prod.yaml"].encode()


# 8. The drift watch ------------------------------------------------------------------------------


def drift_marker(stack: str) -> str:
    """The first line of a stack's drift issue (.github/actions/drift-issue)."""
    return f"<!-- k8s-demo-drift:{stack} -->"


@dataclass
class DriftWatch:
    runs: dict[str, Run]
    issues: list[Issue]
    #: dev's `make drift` verdict (JSON) right after the run, as a user checks it.
    dev_report: dict[str, Any]
    requests: list[Request]


def drift_watch(repository: Repository, head: Path, event: str, replicas: int) -> DriftWatch:
    """Someone scales dev to ``replicas`` behind Pulumi's back; then the drift watch runs."""
    repository.cluster.kubectl("-n", "k8s-demo-dev", "scale", f"deployment/{DEPLOYMENT}", f"--replicas={replicas}")
    before = len(repository.api.state.recorded())
    runs = repository.push(event, head)
    out = repository.workdir / "user-drift" / f"{Path(event).stem}.json"
    # make drift exits 2 on drift (make's own status for a failing command): the report says which.
    repository.make(head, "drift", "STACK=dev", f"OUT={out}", allowed=(0, 2))
    return DriftWatch(
        runs=runs,
        issues=repository.issues(),
        dev_report=json.loads(out.read_text(encoding="utf-8")),
        requests=repository.api.state.recorded()[before:],
    )


@pytest.fixture(scope="module")
def scheduled(repository: Repository, registry_main: Main, promoted: Promoted) -> DriftWatch:
    """The schedule's run. Before it: prod's drift issue from an earlier run, whose drift is gone since, and
    a person's issue that quotes dev's marker, which the action must leave alone."""
    state = repository.api.state
    state.add_issue(repository.full_name, "Drift in stack prod", f"{drift_marker('prod')}\nold", ACTIONS_BOT, ["drift"])
    state.add_issue(repository.full_name, "About drift", f"{drift_marker('dev')}\nquoted", "octocat", ["drift"])
    return drift_watch(repository, registry_main.head, "schedule-drift.json", DRIFTED_REPLICAS[0])


@pytest.fixture(scope="module")
def dispatched(repository: Repository, registry_main: Main, scheduled: DriftWatch) -> DriftWatch:
    """Run by hand after dev was scaled again: the drift lasts, with other values."""
    return drift_watch(repository, registry_main.head, "workflow_dispatch-drift.json", DRIFTED_REPLICAS[1])


def issues_titled(watch: DriftWatch, title: str) -> list[Issue]:
    return [i for i in watch.issues if i.title == title]


def expected_body(watch: DriftWatch, body: str) -> str:
    """The issue body the action writes from dev's report (the marker, the report's Markdown, the run); the run's
    URL is read from ``body``'s last line."""
    run_url = body.splitlines()[-1].removeprefix("Found by ").split(". ", 1)[0]
    return (
        f"{drift_marker('dev')}\n{watch.dev_report['markdown']}\n\n"
        f"Found by {run_url}. Each run updates this issue while the drift lasts; the first run that finds none "
        "closes it.\n"
    )


def test_drift_schedule_runs_only_drift(scheduled: DriftWatch) -> None:
    assert sorted(scheduled.runs) == ["drift.yml"]


def test_drift_watch_checks_every_stack_of_the_backend(scheduled: DriftWatch) -> None:
    run = scheduled.runs["drift.yml"]
    assert run.job("stacks").result == "success", run.output[-4000:]
    checked = sorted(dict(j.matrix)["stack"] for j in run.jobs.values() if j.matrix)
    # pr-8 was created by its review stack job before its preview failed; pull request 8 is still open.
    assert checked == ["dev", "pr-8", "prod"]


def test_drift_jobs_pass(scheduled: DriftWatch) -> None:
    run = scheduled.runs["drift.yml"]
    results = {stack: run.matrix_job("drift", stack=stack).result for stack in ("dev", "pr-8", "prod")}
    assert results == {"dev": "success", "pr-8": "success", "prod": "success"}, run.output[-4000:]


def test_drift_report_says_dev_drifted(scheduled: DriftWatch) -> None:
    assert scheduled.dev_report["exitCode"] == 1


def test_drift_opens_one_labelled_issue_for_dev(scheduled: DriftWatch) -> None:
    opened = issues_titled(scheduled, "Drift in stack dev")
    assert [(i.login, i.state, i.labels) for i in opened] == [(ACTIONS_BOT, "open", ["drift"])]


def test_drift_issue_body_is_the_report(scheduled: DriftWatch) -> None:
    body = issues_titled(scheduled, "Drift in stack dev")[0].body
    assert body == expected_body(scheduled, body)
    assert f"{DRIFTED_REPLICAS[0]}" in scheduled.dev_report["markdown"]


def test_drift_closes_the_old_issue_of_a_stack_without_drift(repository: Repository, scheduled: DriftWatch) -> None:
    prod = issues_titled(scheduled, "Drift in stack prod")
    assert [(i.state, i.state_reason) for i in prod] == [("closed", "completed")]
    comments = [c.body for c in repository.comments(prod[0].number)]
    assert len(comments) == 1
    assert comments[0].startswith("No drift in `prod` any more (")
    assert comments[0].endswith("): closing.")


def test_drift_leaves_a_persons_issue_alone(scheduled: DriftWatch) -> None:
    theirs = issues_titled(scheduled, "About drift")
    assert [(i.state, i.body) for i in theirs] == [("open", f"{drift_marker('dev')}\nquoted")]


def test_drift_dispatch_updates_devs_issue(scheduled: DriftWatch, dispatched: DriftWatch) -> None:
    before = issues_titled(scheduled, "Drift in stack dev")
    after = issues_titled(dispatched, "Drift in stack dev")
    assert [i.number for i in after] == [i.number for i in before]
    assert after[0].body == expected_body(dispatched, after[0].body)
    assert after[0].body != before[0].body


def test_drift_dispatch_opens_no_second_issue(repository: Repository, dispatched: DriftWatch) -> None:
    dev = issues_titled(dispatched, "Drift in stack dev")
    writes = [(r.method, r.path) for r in dispatched.requests if r.method != "GET"]
    assert writes == [("PATCH", f"/repos/{repository.full_name}/issues/{dev[0].number}")]
    assert dispatched.runs["drift.yml"].matrix_job("drift", stack="dev").result == "success"

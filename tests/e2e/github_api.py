"""A stand-in for the part of GitHub's REST API the workflows call, on 127.0.0.1, recording every request.

The workflows reach it as they would reach GitHub Enterprise Server: through
``github.api_url`` (``GITHUB_API_URL``), which ``make workflows`` sets to this
server's URL. It answers as GitHub documents
(https://docs.github.com/en/rest/issues/comments and
https://docs.github.com/en/rest/issues/issues):

- ``GET /repos/{owner}/{repo}/issues/{number}/comments``: the issue's or pull
  request's comments, oldest first, ``per_page`` (default 30, at most 100) and
  ``page``, with a ``Link`` header naming the next and last pages;
- ``POST /repos/{owner}/{repo}/issues/{number}/comments`` with ``{"body": ...}``:
  ``201 Created`` and the comment;
- ``GET`` / ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``: one comment;
  the update answers ``200`` and the edited comment;
- ``GET /repos/{owner}/{repo}/issues``: issues and pull requests (a pull
  request carries a ``pull_request`` key), newest first, filtered by ``state``
  (``open`` by default, ``closed``, ``all``), ``labels`` (comma-separated: every
  one of them) and ``creator``, paginated as above;
- ``POST /repos/{owner}/{repo}/issues`` with ``title`` (required), ``body`` and
  ``labels`` (names, or objects with a ``name``; a label the repository lacks
  is created): ``201 Created`` and the issue;
- ``GET`` / ``PATCH /repos/{owner}/{repo}/issues/{number}``: one issue; the
  update sets any of ``title``, ``body``, ``state`` (``open``, ``closed``),
  ``state_reason`` (``completed``, ``not_planned``, ``reopened``) and ``labels``,
  and answers ``200`` and the issue.

And of a repository's files (https://docs.github.com/en/rest/git/refs,
https://docs.github.com/en/rest/repos/contents and
https://docs.github.com/en/rest/pulls/pulls), for a job that proposes a change
without git: the branches a test seeds (``GitHubState.seed_branch``), each
commit the whole set of its files:

- ``GET /repos/{owner}/{repo}/git/ref/heads/{branch}``: the branch's ref and commit;
- ``POST /repos/{owner}/{repo}/git/refs`` with ``ref`` (``refs/heads/...``) and
  ``sha`` (a commit): ``201 Created``; ``422 Reference already exists``;
- ``GET /repos/{owner}/{repo}/contents/{path}?ref={branch}``: the file at the
  branch's head (default: ``main``), base64, with its blob ``sha``;
- ``PUT /repos/{owner}/{repo}/contents/{path}`` with ``message``, ``content``
  (base64), ``branch`` and, to replace a file, its current blob ``sha``: a new
  commit on the branch, ``200`` (``201`` for a new file) with the commit;
  ``409`` when ``sha`` is not the file's, ``422`` when it is missing;
- ``POST /repos/{owner}/{repo}/pulls`` with ``title``, ``head``, ``base`` and
  ``body``: ``201 Created`` and the pull request, numbered with the issues;
  ``422`` when ``head`` does not exist or has nothing ``base`` lacks.

Like GitHub it answers ``401 Bad credentials`` to an unknown token, ``401
Requires authentication`` to none, ``403 Resource not accessible by
integration`` to a write with a read-only token (a fork's pull request), ``403``
to an edit of someone else's comment, ``422 Validation Failed`` to a body
longer than 65,536 characters, an issue without a title or a ``state`` it does
not know, and ``404 Not Found`` to anything else.

Run it by hand next to act: ``python -m tests.e2e.github_api --token T``
prints its URL, then one line per request.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

#: GitHub's limit on a comment body, in characters.
BODY_LIMIT = 65_536
#: Who GitHub says wrote a comment made with a workflow's GITHUB_TOKEN.
ACTIONS_BOT = "github-actions[bot]"
DOCS = "https://docs.github.com/rest"

_COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
_COMMENT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
_ISSUES = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)$")
_REF = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/ref/heads/(?P<branch>.+)$")
_REFS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/refs$")
_CONTENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>.+)$")
_PULLS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls$")
#: The branch a contents request reads when it names none (the stand-in's repositories' default branch).
DEFAULT_BRANCH = "main"
#: The values GitHub accepts for an issue's state and, on an update, its state_reason.
STATES = ("open", "closed")
STATE_REASONS = ("completed", "not_planned", "reopened")

#: An answer: HTTP status, JSON payload, extra headers.
Answer = tuple[int, object, dict[str, str]]


@dataclass(frozen=True)
class Token:
    """Whom a token authenticates, and whether it may write (a fork's GITHUB_TOKEN may not)."""

    login: str
    write: bool = True


@dataclass(frozen=True)
class Request:
    """One request as received: method, path, query string, the token's user (None: no or bad token), JSON body."""

    method: str
    path: str
    query: str
    login: str | None
    body: object
    status: int


@dataclass
class Comment:
    id: int
    repo: str
    number: int
    body: str
    login: str
    created_at: str
    updated_at: str

    def as_json(self, base_url: str) -> dict[str, Any]:
        """The comment as GitHub's API returns it (the fields a client reads)."""
        html = f"https://github.com/{self.repo}/pull/{self.number}#issuecomment-{self.id}"
        return {
            "id": self.id,
            "node_id": f"IC_{self.id}",
            "url": f"{base_url}/repos/{self.repo}/issues/comments/{self.id}",
            "html_url": html,
            "issue_url": f"{base_url}/repos/{self.repo}/issues/{self.number}",
            "body": self.body,
            "user": {"login": self.login, "type": "Bot" if self.login.endswith("[bot]") else "User"},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "author_association": "NONE" if self.login.endswith("[bot]") else "MEMBER",
        }


@dataclass
class Issue:
    """An issue, or a pull request seen as an issue (``pull_request``), as the issues API shows both."""

    repo: str
    number: int
    title: str
    body: str
    login: str
    labels: list[str]
    created_at: str
    updated_at: str
    state: str = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    pull_request: bool = False

    def as_json(self, base_url: str, comments: int) -> dict[str, Any]:
        """The issue as GitHub's API returns it (the fields a client reads)."""
        url = f"{base_url}/repos/{self.repo}/issues/{self.number}"
        kind = "pull" if self.pull_request else "issues"
        payload: dict[str, Any] = {
            "id": 500_000 + self.number,
            "node_id": f"I_{self.number}",
            "url": url,
            "repository_url": f"{base_url}/repos/{self.repo}",
            "comments_url": f"{url}/comments",
            "html_url": f"https://github.com/{self.repo}/{kind}/{self.number}",
            "number": self.number,
            "title": self.title,
            "body": self.body,
            "user": {"login": self.login, "type": "Bot" if self.login.endswith("[bot]") else "User"},
            "labels": [{"name": name, "default": False} for name in self.labels],
            "state": self.state,
            "state_reason": self.state_reason,
            "locked": False,
            "comments": comments,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
            "author_association": "NONE" if self.login.endswith("[bot]") else "MEMBER",
        }
        if self.pull_request:
            payload["pull_request"] = {"url": f"{base_url}/repos/{self.repo}/pulls/{self.number}"}
        return payload


def blob_sha(content: bytes) -> str:
    """git's object name of a file's content, as the contents API gives it (``sha``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Commit:
    """A commit: the whole set of its files, its message and its parent (empty for a seeded one)."""

    sha: str
    files: dict[str, bytes]
    message: str
    parent: str = ""


@dataclass(frozen=True)
class PullRequest:
    """A pull request's branches; its title, body and state are its ``Issue``'s."""

    repo: str
    number: int
    head: str
    base: str


@dataclass
class GitHubState:
    """Comments, issues, branches and recorded requests, shared by the server's threads."""

    tokens: dict[str, Token]
    comments: dict[int, Comment] = field(default_factory=dict)
    issues: dict[tuple[str, int], Issue] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    #: (repository, branch) -> the sha of its head commit.
    branches: dict[tuple[str, str], str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    pulls: dict[tuple[str, int], PullRequest] = field(default_factory=dict)
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed_branch(self, repo: str, branch: str, files: dict[str, bytes]) -> str:
        """Make ``branch`` of ``repo`` a commit of ``files`` (a test seeds the default branch); its sha."""
        with self.lock:
            return self._commit(repo, branch, dict(files), f"seed {branch}", "")

    def _commit(self, repo: str, branch: str, files: dict[str, bytes], message: str, parent: str) -> str:
        listing = "".join(f"{path} {blob_sha(content)}\n" for path, content in sorted(files.items()))
        sha = hashlib.sha1(f"{parent}\n{message}\n{listing}".encode(), usedforsecurity=False).hexdigest()
        self.commits[sha] = Commit(sha, files, message, parent)
        self.branches[(repo, branch)] = sha
        return sha

    def file_at(self, repo: str, branch: str, path: str) -> bytes | None:
        """``path`` at the head of ``branch``, or None when the branch or the file does not exist."""
        with self.lock:
            head = self.branches.get((repo, branch))
            return None if head is None else self.commits[head].files.get(path)

    def pull_requests(self, repo: str) -> list[tuple[PullRequest, Issue]]:
        """The repository's pull requests made through ``POST .../pulls``, oldest first, with their issues."""
        with self.lock:
            found = sorted((p for (r, _), p in self.pulls.items() if r == repo), key=lambda p: p.number)
            return [(p, self.issues[(repo, p.number)]) for p in found]

    def add_comment(self, repo: str, number: int, body: str, login: str) -> Comment:
        """Post a comment as ``login`` (a test seeds one as a person would)."""
        with self.lock:
            now = _now()
            self.next_id += 1
            comment = Comment(self.next_id, repo, number, body, login, now, now)
            self.comments[comment.id] = comment
            return comment

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str,
        login: str,
        labels: list[str],
        *,
        number: int | None = None,
        pull_request: bool = False,
    ) -> Issue:
        """Open an issue (or a pull request) as ``login``, numbered ``number`` or else the repository's next
        number, which issues and pull requests share."""
        with self.lock:
            taken = [n for r, n in self.issues if r == repo] + [c.number for c in self.comments.values()]
            now = _now()
            issue = Issue(repo, number or max(taken, default=0) + 1, title, body, login, list(labels), now, now)
            issue.pull_request = pull_request
            self.issues[(repo, issue.number)] = issue
            return issue

    def issues_of(self, repo: str) -> list[Issue]:
        """The repository's issues (pull requests included), oldest first."""
        with self.lock:
            return sorted((i for (r, _), i in self.issues.items() if r == repo), key=lambda i: i.number)

    def on_pull_request(self, repo: str, number: int) -> list[Comment]:
        """The pull request's comments, oldest first."""
        with self.lock:
            return sorted(
                (c for c in self.comments.values() if c.repo == repo and c.number == number), key=lambda c: c.id
            )

    def recorded(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


class _Handler(BaseHTTPRequestHandler):
    server: GitHubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        # GitHub Enterprise Server serves the API under /api/v3; api.github.com at the root. Both work here.
        path = url.path.removeprefix("/api/v3")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        token = self._token()
        status, payload, headers = self._answer(method, path, url.query, token, body)
        with self.server.state.lock:
            self.server.state.requests.append(
                Request(method, path, url.query, token.login if token else None, body, status)
            )
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _token(self) -> Token | None:
        """The token's user; None for no token or one the server does not know."""
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.server.state.tokens.get(value.strip())

    def _answer(self, method: str, path: str, query: str, token: Token | None, body: object) -> Answer:
        if self.headers.get("Authorization") and token is None:
            return _error(HTTPStatus.UNAUTHORIZED, "Bad credentials")
        answer = (
            self._comments(method, path, query, token, body)
            or self._issues(method, path, query, token, body)
            or self._git(method, path, query, token, body)
        )
        return answer or _error(HTTPStatus.NOT_FOUND, "Not Found")

    def _comments(self, method: str, path: str, query: str, token: Token | None, body: object) -> Answer | None:
        """The issue-comment endpoints; None for a path or method they do not serve."""
        if match := _COMMENTS.match(path):
            repo, number = match["repo"], int(match["number"])
            if method == "GET":
                return self._list(repo, number, query)
            if method == "POST":
                return self._create(repo, number, token, body)
        if match := _COMMENT.match(path):
            with self.server.state.lock:
                comment = self.server.state.comments.get(int(match["id"]))
            if comment is not None and comment.repo == match["repo"]:
                if method == "GET":
                    return HTTPStatus.OK, comment.as_json(self.server.url), {}
                if method == "PATCH":
                    return self._update(comment, token, body)
        return None

    def _issues(self, method: str, path: str, query: str, token: Token | None, body: object) -> Answer | None:
        """The issue endpoints; None for a path or method they do not serve."""
        if match := _ISSUES.match(path):
            if method == "GET":
                return self._list_issues(match["repo"], query)
            if method == "POST":
                return self._create_issue(match["repo"], token, body)
        if match := _ISSUE.match(path):
            with self.server.state.lock:
                issue = self.server.state.issues.get((match["repo"], int(match["number"])))
            if issue is not None:
                if method == "GET":
                    return HTTPStatus.OK, self._issue_json(issue), {}
                if method == "PATCH":
                    return self._update_issue(issue, token, body)
        return None

    def _create(self, repo: str, number: int, token: Token | None, body: object) -> Answer:
        text = _writable_body(token, body)
        if not isinstance(text, str):
            return text
        assert token is not None
        comment = self.server.state.add_comment(repo, number, text, token.login)
        location = f"{self.server.url}/repos/{repo}/issues/comments/{comment.id}"
        return HTTPStatus.CREATED, comment.as_json(self.server.url), {"Location": location}

    def _update(self, comment: Comment, token: Token | None, body: object) -> Answer:
        text = _writable_body(token, body)
        if not isinstance(text, str):
            return text
        assert token is not None
        if token.login != comment.login:
            return _error(HTTPStatus.FORBIDDEN, "Must have admin rights to Repository.")
        with self.server.state.lock:
            comment.body = text
            comment.updated_at = _now()
        return HTTPStatus.OK, comment.as_json(self.server.url), {}

    def _list(self, repo: str, number: int, query: str) -> Answer:
        comments = self.server.state.on_pull_request(repo, number)
        base = f"{self.server.url}/repos/{repo}/issues/{number}/comments"
        return self._page(base, query, [c.as_json(self.server.url) for c in comments])

    def _page(self, base: str, query: str, items: list[dict[str, Any]]) -> Answer:
        """One page of ``items`` (``per_page``, ``page``), with the ``Link`` header GitHub sends."""
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            per_page = min(max(int(params.get("per_page", 30)), 1), 100)
            page = max(int(params.get("page", 1)), 1)
        except ValueError:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation Failed")
        last = max((len(items) + per_page - 1) // per_page, 1)
        shown = items[(page - 1) * per_page : page * per_page]
        links = []
        if page < last:
            links.append(f'<{base}?{urlencode({**params, "per_page": per_page, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**params, "per_page": per_page, "page": last})}>; rel="last"')
        return HTTPStatus.OK, shown, ({"Link": ", ".join(links)} if links else {})

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        comments = len(self.server.state.on_pull_request(issue.repo, issue.number))
        return issue.as_json(self.server.url, comments)

    def _list_issues(self, repo: str, query: str) -> Answer:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        state = params.get("state", "open")
        if state not in (*STATES, "all"):
            return _invalid("Issue", "state", f"state must be one of open, closed, all, not {state}")
        wanted = {name.strip() for name in params.get("labels", "").split(",") if name.strip()}
        issues = [
            i
            for i in reversed(self.server.state.issues_of(repo))
            if state in ("all", i.state) and wanted <= set(i.labels) and params.get("creator", i.login) == i.login
        ]
        return self._page(f"{self.server.url}/repos/{repo}/issues", query, [self._issue_json(i) for i in issues])

    def _create_issue(self, repo: str, token: Token | None, body: object) -> Answer:
        fields = _writable_fields(token, body)
        if not isinstance(fields, dict):
            return fields
        assert token is not None
        title = fields.get("title")
        if not isinstance(title, str) or not title.strip():
            return _invalid("Issue", "title", "title wasn't supplied")
        text = fields.get("body") or ""
        labels = _labels(fields.get("labels", []))
        if not isinstance(text, str) or len(text) > BODY_LIMIT:
            return _invalid("Issue", "body", f"body is too long (maximum is {BODY_LIMIT} characters)")
        if labels is None:
            return _invalid("Issue", "labels", "labels must be names")
        issue = self.server.state.add_issue(repo, title, text, token.login, labels)
        location = f"{self.server.url}/repos/{repo}/issues/{issue.number}"
        return HTTPStatus.CREATED, self._issue_json(issue), {"Location": location}

    def _update_issue(self, issue: Issue, token: Token | None, body: object) -> Answer:
        fields = _writable_fields(token, body)
        if not isinstance(fields, dict):
            return fields
        state = fields.get("state", issue.state)
        reason = fields.get("state_reason")
        labels = _labels(fields.get("labels", issue.labels))
        if state not in STATES:
            return _invalid("Issue", "state", f"state must be open or closed, not {state}")
        if reason is not None and reason not in STATE_REASONS:
            return _invalid("Issue", "state_reason", f"state_reason must be one of {', '.join(STATE_REASONS)}")
        text = fields.get("body", issue.body)
        if not isinstance(text, str) or len(text) > BODY_LIMIT:
            return _invalid("Issue", "body", f"body is too long (maximum is {BODY_LIMIT} characters)")
        if labels is None:
            return _invalid("Issue", "labels", "labels must be names")
        with self.server.state.lock:
            now = _now()
            if state == "closed" and issue.state != "closed":
                issue.closed_at = now
                issue.state_reason = reason or "completed"
            elif state == "open" and issue.state == "closed":
                issue.closed_at = None
                issue.state_reason = reason or "reopened"
            issue.state = state
            issue.title = str(fields.get("title", issue.title))
            issue.body = text
            issue.labels = labels
            issue.updated_at = now
        return HTTPStatus.OK, self._issue_json(issue), {}

    # -- files, branches and pull requests ------------------------------------------------------------------

    def _git(self, method: str, path: str, query: str, token: Token | None, body: object) -> Answer | None:
        """The ref, contents and pull request endpoints; None for a path or method they do not serve."""
        if (match := _REF.match(path)) and method == "GET":
            return self._ref(match["repo"], match["branch"])
        if (match := _REFS.match(path)) and method == "POST":
            return self._create_ref(match["repo"], token, body)
        if match := _CONTENTS.match(path):
            if method == "GET":
                branch = {k: v[-1] for k, v in parse_qs(query).items()}.get("ref", DEFAULT_BRANCH)
                return self._contents(match["repo"], branch, match["path"])
            if method == "PUT":
                return self._put_contents(match["repo"], match["path"], token, body)
        if (match := _PULLS.match(path)) and method == "POST":
            return self._create_pull(match["repo"], token, body)
        return None

    def _ref_json(self, repo: str, branch: str, sha: str) -> dict[str, Any]:
        return {
            "ref": f"refs/heads/{branch}",
            "url": f"{self.server.url}/repos/{repo}/git/refs/heads/{branch}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.server.url}/repos/{repo}/git/commits/{sha}"},
        }

    def _ref(self, repo: str, branch: str) -> Answer:
        state = self.server.state
        with state.lock:
            sha = state.branches.get((repo, branch))
        if sha is None:
            return _error(HTTPStatus.NOT_FOUND, "Not Found")
        return HTTPStatus.OK, self._ref_json(repo, branch, sha), {}

    def _create_ref(self, repo: str, token: Token | None, body: object) -> Answer:
        fields = _writable_fields(token, body)
        if not isinstance(fields, dict):
            return fields
        ref, sha = fields.get("ref"), fields.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or not isinstance(sha, str):
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Reference update failed")
        branch = ref.removeprefix("refs/heads/")
        state = self.server.state
        with state.lock:
            if (repo, branch) in state.branches:
                return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Reference already exists")
            if sha not in state.commits:
                return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Object does not exist")
            state.branches[(repo, branch)] = sha
        return HTTPStatus.CREATED, self._ref_json(repo, branch, sha), {}

    def _file_json(self, repo: str, branch: str, path: str, content: bytes) -> dict[str, Any]:
        return {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob_sha(content),
            "size": len(content),
            "encoding": "base64",
            "content": base64.encodebytes(content).decode("ascii"),
            "url": f"{self.server.url}/repos/{repo}/contents/{path}?ref={branch}",
        }

    def _contents(self, repo: str, branch: str, path: str) -> Answer:
        content = self.server.state.file_at(repo, branch, path)
        if content is None:
            return _error(HTTPStatus.NOT_FOUND, "Not Found")
        return HTTPStatus.OK, self._file_json(repo, branch, path, content), {}

    def _put_contents(self, repo: str, path: str, token: Token | None, body: object) -> Answer:
        fields = _writable_fields(token, body)
        if not isinstance(fields, dict):
            return fields
        parsed = _file_write(fields)
        if not isinstance(parsed, FileWrite):
            return parsed
        message, content, branch = parsed.message, parsed.content, parsed.branch
        state = self.server.state
        with state.lock:
            head = state.branches.get((repo, branch))
            if head is None:
                return _error(HTTPStatus.NOT_FOUND, f"Branch {branch} not found")
            files = dict(state.commits[head].files)
            existing = files.get(path)
            if existing is not None and "sha" not in fields:
                return _invalid("Contents", "sha", '"sha" wasn\'t supplied.')
            if existing is not None and fields["sha"] != blob_sha(existing):
                return _error(HTTPStatus.CONFLICT, f"{path} does not match {fields['sha']}")
            files[path] = content
            sha = state._commit(repo, branch, files, message, head)
        status = HTTPStatus.CREATED if existing is None else HTTPStatus.OK
        commit = {"sha": sha, "message": message, "parents": [{"sha": head}]}
        return status, {"content": self._file_json(repo, branch, path, content), "commit": commit}, {}

    def _create_pull(self, repo: str, token: Token | None, body: object) -> Answer:
        fields = _writable_fields(token, body)
        if not isinstance(fields, dict):
            return fields
        assert token is not None
        title, head, base = (str(fields.get(name) or "") for name in ("title", "head", "base"))
        text = fields.get("body") or ""
        if not (title and head and base) or not isinstance(text, str):
            return _invalid("PullRequest", "title", "title, head and base must be supplied")
        state = self.server.state
        with state.lock:
            head_sha, base_sha = state.branches.get((repo, head)), state.branches.get((repo, base))
        if head_sha is None or base_sha is None:
            return _invalid("PullRequest", "head" if head_sha is None else "base", "invalid")
        if head_sha == base_sha:
            return _invalid("PullRequest", "head", f"No commits between {base} and {head}")
        issue = state.add_issue(repo, title, text, token.login, [], pull_request=True)
        with state.lock:
            state.pulls[(repo, issue.number)] = PullRequest(repo, issue.number, head, base)
        payload = {
            **self._issue_json(issue),
            "url": f"{self.server.url}/repos/{repo}/pulls/{issue.number}",
            "head": {"ref": head, "sha": head_sha},
            "base": {"ref": base, "sha": base_sha},
        }
        location = f"{self.server.url}/repos/{repo}/pulls/{issue.number}"
        return HTTPStatus.CREATED, payload, {"Location": location}


@dataclass(frozen=True)
class FileWrite:
    """What a contents write asks for: its commit message, the file's new content, the branch."""

    message: str
    content: bytes
    branch: str


def _file_write(fields: dict[str, Any]) -> FileWrite | Answer:
    """A contents write's message, decoded content and branch, or GitHub's answer when it refuses them."""
    message, encoded = fields.get("message"), fields.get("content")
    if not isinstance(message, str) or not message:
        return _invalid("Contents", "message", "message wasn't supplied")
    try:
        content = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        return _invalid("Contents", "content", "content is not valid Base64")
    return FileWrite(message, content, str(fields.get("branch", DEFAULT_BRANCH)))


def _error(status: HTTPStatus, message: str, errors: list[dict[str, str]] | None = None) -> Answer:
    payload: dict[str, object] = {"message": message, "documentation_url": DOCS}
    if errors:
        payload["errors"] = errors
    return status, payload, {}


def _invalid(resource: str, field_name: str, message: str) -> Answer:
    problem = {"resource": resource, "code": "invalid", "field": field_name, "message": message}
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation Failed", [problem])


def _writable_fields(token: Token | None, body: object) -> dict[str, Any] | Answer:
    """The JSON object of a write, or GitHub's answer when it refuses the write."""
    if token is None:
        return _error(HTTPStatus.UNAUTHORIZED, "Requires authentication")
    if not token.write:
        return _error(HTTPStatus.FORBIDDEN, "Resource not accessible by integration")
    if not isinstance(body, dict):
        return _error(HTTPStatus.BAD_REQUEST, "Problems parsing JSON")
    return body


def _labels(value: object) -> list[str] | None:
    """Label names from a list of names or of ``{"name": ...}`` objects; None when it is neither."""
    if not isinstance(value, list):
        return None
    names = [v.get("name") if isinstance(v, dict) else v for v in value]
    return [str(n) for n in names] if all(isinstance(n, str) for n in names) else None


def _writable_body(token: Token | None, body: object) -> str | Answer:
    """The comment body to write, or GitHub's answer when it refuses the write."""
    if token is None:
        return _error(HTTPStatus.UNAUTHORIZED, "Requires authentication")
    if not token.write:
        return _error(HTTPStatus.FORBIDDEN, "Resource not accessible by integration")
    text = body.get("body") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, 'Invalid request.\n\n"body" wasn\'t supplied.')
    if len(text) > BODY_LIMIT:
        problem = {"resource": "IssueComment", "code": "custom", "field": "body"}
        problem["message"] = f"body is too long (maximum is {BODY_LIMIT} characters)"
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation Failed", [problem])
    return text


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubServer(ThreadingHTTPServer):
    """The stand-in bound to 127.0.0.1 (port 0: a free one); ``url`` is what ``GITHUB_API_URL`` gets."""

    daemon_threads = True

    def __init__(self, tokens: dict[str, Token], port: int = 0, *, verbose: bool = False) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = GitHubState(tokens=tokens)
        self.verbose = verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextmanager
def serving(tokens: dict[str, Token]) -> Iterator[GitHubServer]:
    """Serve in a thread until the block ends."""
    server = GitHubServer(tokens)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.github_api", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token", required=True, help=f"the GITHUB_TOKEN secret given to act (user {ACTIONS_BOT})")
    args = parser.parse_args(argv)
    server = GitHubServer({args.token: Token(ACTIONS_BOT)}, args.port, verbose=True)
    print(f"GITHUB_API_URL={server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

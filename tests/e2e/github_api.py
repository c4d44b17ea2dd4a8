"""A stand-in for the part of GitHub's REST API the workflows call, on 127.0.0.1, recording every request.

The workflows reach it as they would reach GitHub Enterprise Server: through
``github.api_url`` (``GITHUB_API_URL``), which ``make workflows`` sets to this
server's URL. It answers as GitHub documents
(https://docs.github.com/en/rest/issues/comments):

- ``GET /repos/{owner}/{repo}/issues/{number}/comments``: the pull request's
  comments, oldest first, ``per_page`` (default 30, at most 100) and ``page``,
  with a ``Link`` header naming the next and last pages;
- ``POST /repos/{owner}/{repo}/issues/{number}/comments`` with ``{"body": ...}``:
  ``201 Created`` and the comment;
- ``GET`` / ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``: one comment;
  the update answers ``200`` and the edited comment.

Like GitHub it answers ``401 Bad credentials`` to an unknown token, ``401
Requires authentication`` to none, ``403 Resource not accessible by
integration`` to a write with a read-only token (a fork's pull request), ``403``
to an edit of someone else's comment, ``422 Validation Failed`` to a body
longer than 65,536 characters and ``404 Not Found`` to anything else.

Run it by hand next to act: ``python -m tests.e2e.github_api --token T``
prints its URL, then one line per request.
"""

from __future__ import annotations

import argparse
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
class GitHubState:
    """Comments and recorded requests, shared by the server's threads."""

    tokens: dict[str, Token]
    comments: dict[int, Comment] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_comment(self, repo: str, number: int, body: str, login: str) -> Comment:
        """Post a comment as ``login`` (a test seeds one as a person would)."""
        with self.lock:
            now = _now()
            self.next_id += 1
            comment = Comment(self.next_id, repo, number, body, login, now, now)
            self.comments[comment.id] = comment
            return comment

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
        return _error(HTTPStatus.NOT_FOUND, "Not Found")

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
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            per_page = min(max(int(params.get("per_page", 30)), 1), 100)
            page = max(int(params.get("page", 1)), 1)
        except ValueError:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation Failed")
        comments = self.server.state.on_pull_request(repo, number)
        last = max((len(comments) + per_page - 1) // per_page, 1)
        shown = comments[(page - 1) * per_page : page * per_page]
        links = []
        base = f"{self.server.url}/repos/{repo}/issues/{number}/comments"
        if page < last:
            links.append(f'<{base}?{urlencode({**params, "per_page": per_page, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**params, "per_page": per_page, "page": last})}>; rel="last"')
        return HTTPStatus.OK, [c.as_json(self.server.url) for c in shown], ({"Link": ", ".join(links)} if links else {})


def _error(status: HTTPStatus, message: str, errors: list[dict[str, str]] | None = None) -> Answer:
    payload: dict[str, object] = {"message": message, "documentation_url": DOCS}
    if errors:
        payload["errors"] = errors
    return status, payload, {}


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

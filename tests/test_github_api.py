"""The GitHub REST API stand-in answers as GitHub documents (tests/e2e/github_api.py)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.e2e.github_api import ACTIONS_BOT, BODY_LIMIT, GitHubServer, Token, blob_sha, serving

BOT, READ_ONLY, PERSON = "b" * 40, "r" * 40, "p" * 40
COMMENTS = "/repos/example/k8s-demo/issues/7/comments"


@pytest.fixture
def api() -> Iterator[GitHubServer]:
    tokens = {BOT: Token(ACTIONS_BOT), READ_ONLY: Token(ACTIONS_BOT, write=False), PERSON: Token("octocat")}
    with serving(tokens) as server:
        yield server


def call(
    api: GitHubServer, method: str, path: str, body: object = None, token: str | None = BOT
) -> tuple[int, object, dict[str, str]]:
    """Status, JSON payload and headers of one request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def payload(answer: tuple[int, object, dict[str, str]]) -> dict[str, object]:
    assert isinstance(answer[1], dict)
    return answer[1]


def test_a_new_comment_is_created_by_the_tokens_user(api: GitHubServer) -> None:
    status, body, _ = call(api, "POST", COMMENTS, {"body": "hello"})
    assert status == 201
    assert isinstance(body, dict)
    assert (body["body"], body["user"]) == ("hello", {"login": ACTIONS_BOT, "type": "Bot"})


def test_the_list_is_oldest_first(api: GitHubServer) -> None:
    for text in ("one", "two"):
        call(api, "POST", COMMENTS, {"body": text})
    status, body, _ = call(api, "GET", COMMENTS)
    assert status == 200
    assert isinstance(body, list)
    assert [c["body"] for c in body] == ["one", "two"]


def test_a_long_list_links_its_next_and_last_pages(api: GitHubServer) -> None:
    for n in range(5):
        call(api, "POST", COMMENTS, {"body": str(n)})
    _, body, headers = call(api, "GET", f"{COMMENTS}?per_page=2&page=2")
    assert isinstance(body, list)
    assert [c["body"] for c in body] == ["2", "3"]
    assert headers["Link"] == (
        f'<{api.url}{COMMENTS}?per_page=2&page=3>; rel="next", <{api.url}{COMMENTS}?per_page=2&page=3>; rel="last"'
    )


def test_the_last_page_has_no_link(api: GitHubServer) -> None:
    call(api, "POST", COMMENTS, {"body": "only"})
    assert "Link" not in call(api, "GET", COMMENTS)[2]


def test_an_edit_keeps_the_id_and_changes_the_body(api: GitHubServer) -> None:
    created = payload(call(api, "POST", COMMENTS, {"body": "before"}))
    status, body, _ = call(api, "PATCH", f"/repos/example/k8s-demo/issues/comments/{created['id']}", {"body": "after"})
    assert status == 200
    assert isinstance(body, dict)
    assert (body["id"], body["body"]) == (created["id"], "after")


def test_the_enterprise_path_prefix_is_served(api: GitHubServer) -> None:
    assert call(api, "POST", f"/api/v3{COMMENTS}", {"body": "ghes"})[0] == 201


def test_an_unknown_token_gets_bad_credentials(api: GitHubServer) -> None:
    assert call(api, "GET", COMMENTS, token="x" * 40)[:2] == (
        401,
        {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
    )


def test_a_write_without_a_token_requires_authentication(api: GitHubServer) -> None:
    status, body, _ = call(api, "POST", COMMENTS, {"body": "x"}, token=None)
    assert (status, payload((status, body, {}))["message"]) == (401, "Requires authentication")


def test_a_read_only_token_cannot_comment(api: GitHubServer) -> None:
    answer = call(api, "POST", COMMENTS, {"body": "x"}, token=READ_ONLY)
    assert (answer[0], payload(answer)["message"]) == (403, "Resource not accessible by integration")


def test_someone_elses_comment_cannot_be_edited(api: GitHubServer) -> None:
    theirs = api.state.add_comment("example/k8s-demo", 7, "mine", "octocat")
    answer = call(api, "PATCH", f"/repos/example/k8s-demo/issues/comments/{theirs.id}", {"body": "edited"})
    assert (answer[0], theirs.body) == (403, "mine")


def test_a_body_over_the_limit_is_refused(api: GitHubServer) -> None:
    answer = call(api, "POST", COMMENTS, {"body": "x" * (BODY_LIMIT + 1)})
    assert (answer[0], payload(answer)["errors"]) == (
        422,
        [
            {
                "resource": "IssueComment",
                "code": "custom",
                "field": "body",
                "message": f"body is too long (maximum is {BODY_LIMIT} characters)",
            }
        ],
    )


def test_an_unknown_path_is_not_found(api: GitHubServer) -> None:
    assert call(api, "GET", "/repos/example/k8s-demo/pulls/7")[0] == 404


def test_every_request_is_recorded_with_its_user(api: GitHubServer) -> None:
    call(api, "POST", COMMENTS, {"body": "hello"})
    call(api, "GET", COMMENTS, token=PERSON)
    assert [(r.method, r.path, r.login, r.body, r.status) for r in api.state.recorded()] == [
        ("POST", COMMENTS, ACTIONS_BOT, {"body": "hello"}, 201),
        ("GET", COMMENTS, "octocat", None, 200),
    ]


def test_it_listens_on_loopback_only(api: GitHubServer) -> None:
    assert api.server_address[0] == "127.0.0.1"


ISSUES = "/repos/example/k8s-demo/issues"


def test_a_new_issue_has_its_title_body_labels_and_the_tokens_user(api: GitHubServer) -> None:
    status, body, headers = call(api, "POST", ISSUES, {"title": "Drift", "body": "text", "labels": ["drift"]})
    issue = payload((status, body, headers))
    assert status == 201
    assert (issue["title"], issue["body"], issue["labels"], issue["user"], issue["state"]) == (
        "Drift",
        "text",
        [{"name": "drift", "default": False}],
        {"login": ACTIONS_BOT, "type": "Bot"},
        "open",
    )
    assert headers["Location"] == f"{api.url}{ISSUES}/{issue['number']}"


def test_issues_and_pull_requests_share_numbers(api: GitHubServer) -> None:
    api.state.add_issue("example/k8s-demo", "A pull request", "", "octocat", [], number=7, pull_request=True)
    issue = payload(call(api, "POST", ISSUES, {"title": "Drift"}))
    assert issue["number"] == 8


def test_an_issue_without_a_title_is_refused(api: GitHubServer) -> None:
    status, body, _ = call(api, "POST", ISSUES, {"body": "text"})
    assert (status, payload((status, body, {}))["message"]) == (422, "Validation Failed")
    assert api.state.issues == {}


def test_a_read_only_token_cannot_open_an_issue(api: GitHubServer) -> None:
    status, body, _ = call(api, "POST", ISSUES, {"title": "Drift"}, token=READ_ONLY)
    assert (status, payload((status, body, {}))["message"]) == (403, "Resource not accessible by integration")


def test_the_issue_list_is_newest_first_open_only_and_shows_pull_requests(api: GitHubServer) -> None:
    api.state.add_issue("example/k8s-demo", "A pull request", "", "octocat", [], number=7, pull_request=True)
    for title in ("one", "two", "closed"):
        call(api, "POST", ISSUES, {"title": title})
    call(api, "PATCH", f"{ISSUES}/10", {"state": "closed"})
    listed = call(api, "GET", ISSUES)[1]
    assert isinstance(listed, list)
    assert [(i["title"], "pull_request" in i) for i in listed] == [
        ("two", False),
        ("one", False),
        ("A pull request", True),
    ]


def test_the_issue_list_filters_by_every_label_given(api: GitHubServer) -> None:
    for title, labels in (("both", ["drift", "prod"]), ("drift", ["drift"]), ("none", [])):
        call(api, "POST", ISSUES, {"title": title, "labels": labels})
    listed = call(api, "GET", f"{ISSUES}?labels=drift,prod")[1]
    assert isinstance(listed, list)
    assert [i["title"] for i in listed] == ["both"]


def test_the_issue_list_refuses_an_unknown_state(api: GitHubServer) -> None:
    status, body, _ = call(api, "GET", f"{ISSUES}?state=gone")
    assert (status, payload((status, body, {}))["message"]) == (422, "Validation Failed")


def test_an_issue_update_replaces_the_body(api: GitHubServer) -> None:
    number = payload(call(api, "POST", ISSUES, {"title": "Drift", "body": "old"}))["number"]
    status, body, _ = call(api, "PATCH", f"{ISSUES}/{number}", {"body": "new"})
    assert (status, payload((status, body, {}))["body"]) == (200, "new")
    assert payload(call(api, "GET", f"{ISSUES}/{number}"))["body"] == "new"


def test_closing_an_issue_records_its_reason_and_time(api: GitHubServer) -> None:
    number = payload(call(api, "POST", ISSUES, {"title": "Drift"}))["number"]
    issue = payload(call(api, "PATCH", f"{ISSUES}/{number}", {"state": "closed", "state_reason": "completed"}))
    assert (issue["state"], issue["state_reason"], issue["closed_at"] is not None) == ("closed", "completed", True)


def test_an_unknown_state_reason_is_refused_and_changes_nothing(api: GitHubServer) -> None:
    number = payload(call(api, "POST", ISSUES, {"title": "Drift"}))["number"]
    status, _, _ = call(api, "PATCH", f"{ISSUES}/{number}", {"state": "closed", "state_reason": "fixed"})
    assert (status, payload(call(api, "GET", f"{ISSUES}/{number}"))["state"]) == (422, "open")


def test_an_unknown_issue_is_not_found(api: GitHubServer) -> None:
    assert call(api, "PATCH", f"{ISSUES}/99", {"body": "x"})[0] == 404


def test_an_issue_counts_its_comments(api: GitHubServer) -> None:
    number = payload(call(api, "POST", ISSUES, {"title": "Drift"}))["number"]
    call(api, "POST", f"{ISSUES}/{number}/comments", {"body": "closing"})
    assert payload(call(api, "GET", f"{ISSUES}/{number}"))["comments"] == 1


# A repository's files: a branch, a file written on it, a pull request from it.

REPO = "example/k8s-demo"
STACK_FILE = b"config:\n  k8s-demo:imageTag: 0.1\n"


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


@pytest.fixture
def seeded(api: GitHubServer) -> str:
    """main with one file; its commit."""
    return api.state.seed_branch(REPO, "main", {"Pulumi.prod.yaml": STACK_FILE})


def test_a_branchs_ref_names_its_commit(api: GitHubServer, seeded: str) -> None:
    status, body, _ = call(api, "GET", f"/repos/{REPO}/git/ref/heads/main")
    assert (status, payload((status, body, {}))["object"]) == (
        200,
        {"type": "commit", "sha": seeded, "url": f"{api.url}/repos/{REPO}/git/commits/{seeded}"},
    )


def test_a_file_reads_back_base64_with_gits_blob_name(api: GitHubServer, seeded: str) -> None:
    body = payload(call(api, "GET", f"/repos/{REPO}/contents/Pulumi.prod.yaml?ref=main"))
    assert (base64.b64decode(str(body["content"])), body["sha"]) == (STACK_FILE, blob_sha(STACK_FILE))


def test_a_file_written_on_a_new_branch_leaves_main_as_it_was(api: GitHubServer, seeded: str) -> None:
    assert call(api, "POST", f"/repos/{REPO}/git/refs", {"ref": "refs/heads/pin", "sha": seeded})[0] == 201
    new = b"config:\n  k8s-demo:imageTag: 0.2\n"
    write = {"message": "pin", "content": b64(new), "sha": blob_sha(STACK_FILE), "branch": "pin"}
    status, _, _ = call(api, "PUT", f"/repos/{REPO}/contents/Pulumi.prod.yaml", write)
    assert (
        status,
        api.state.file_at(REPO, "pin", "Pulumi.prod.yaml"),
        api.state.file_at(REPO, "main", "Pulumi.prod.yaml"),
    ) == (
        200,
        new,
        STACK_FILE,
    )


def test_a_write_over_a_file_changed_since_conflicts(api: GitHubServer, seeded: str) -> None:
    write = {"message": "pin", "content": b64(b"x"), "sha": blob_sha(b"older"), "branch": "main"}
    assert call(api, "PUT", f"/repos/{REPO}/contents/Pulumi.prod.yaml", write)[0] == 409


def test_an_existing_branch_is_not_created_again(api: GitHubServer, seeded: str) -> None:
    status, body, _ = call(api, "POST", f"/repos/{REPO}/git/refs", {"ref": "refs/heads/main", "sha": seeded})
    assert (status, payload((status, body, {}))["message"]) == (422, "Reference already exists")


def test_a_pull_request_is_opened_from_a_branch_with_a_change(api: GitHubServer, seeded: str) -> None:
    call(api, "POST", f"/repos/{REPO}/git/refs", {"ref": "refs/heads/pin", "sha": seeded})
    write = {"message": "pin", "content": b64(b"y"), "sha": blob_sha(STACK_FILE), "branch": "pin"}
    call(api, "PUT", f"/repos/{REPO}/contents/Pulumi.prod.yaml", write)
    opened = payload(call(api, "POST", f"/repos/{REPO}/pulls", {"title": "Pin", "head": "pin", "base": "main"}))
    pulls = api.state.pull_requests(REPO)
    assert [(p.head, p.base, i.title, i.login) for p, i in pulls] == [("pin", "main", "Pin", ACTIONS_BOT)]
    assert opened["number"] == pulls[0][0].number


def test_a_pull_request_without_a_change_is_refused(api: GitHubServer, seeded: str) -> None:
    call(api, "POST", f"/repos/{REPO}/git/refs", {"ref": "refs/heads/same", "sha": seeded})
    status, _, _ = call(api, "POST", f"/repos/{REPO}/pulls", {"title": "Pin", "head": "same", "base": "main"})
    assert (status, api.state.pull_requests(REPO)) == (422, [])


def test_a_read_only_token_writes_no_file(api: GitHubServer, seeded: str) -> None:
    write = {"message": "pin", "content": b64(b"z"), "sha": blob_sha(STACK_FILE), "branch": "main"}
    status, _, _ = call(api, "PUT", f"/repos/{REPO}/contents/Pulumi.prod.yaml", write, token=READ_ONLY)
    assert (status, api.state.file_at(REPO, "main", "Pulumi.prod.yaml")) == (403, STACK_FILE)

"""A fake GitHub over httpx.MockTransport, answering from a real local git repository.

It serves the calls Lens makes (a branch's head, compare, a file's raw contents, the
tarball and its codeload download) the way GitHub's description and docs say
(tests/contracts/github): every request and answer of the API goes through the
description (`github_contract.checked`), rate-limit answers through GitHub's rate-limit
docs. It checks the headers Lens must send and records every request.

Compare answers like GitHub's `base...head`: from the merge base, with `status` ahead,
behind, diverged or identical, commits paged by `per_page`/`page`, and the files on
the first page only, at most 300 for the whole comparison. A base GitHub does not have
is a 404.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx

from tests.content.github_contract import FACTS, checked

OWNER_REPO = "lens-test/course-content"
OWNER, REPO = OWNER_REPO.split("/")
API = "https://api.github.com"
WEB = "https://github.com"
REPO_ID = 700000001
OWNER_ID = 90000001
# Compare, paginated: "up to 300 changed files for the entire comparison"; without a
# paging parameter "the returned list is limited to 250 commits".
COMPARE_FILES = 300
UNPAGED_COMMITS = 250
DOCS = "https://docs.github.com/rest"
# GitHub's docs give no exact text; this is what public test fixtures use (FACTS.md).
SECONDARY_BODY = FACTS["secondary_rate_limit"][
    "observed_body_in_public_test_fixtures_not_vendor_docs"
]


def git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, input=input
    ).stdout


def resolve(root: Path, ref: str) -> str | None:
    """The commit `ref` names, or None."""
    try:
        out = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        return None
    return out.decode().strip() or None


def commit_range(root: Path, old: str, new: str) -> list[str]:
    """The commits in `new` and not in `old`, oldest first."""
    return git(root, "rev-list", "--reverse", f"{old}..{new}").decode().split()


class History:
    """A git repository whose commits the test writes one by one (`write` values are
    text, or bytes for a binary file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "author@example.org")
        git(root, "config", "user.name", "Author")
        self.commits: list[str] = []

    def commit(self, message: str, *, write=None, delete=(), rename=()) -> str:
        for old, new in rename:
            (self.root / new).parent.mkdir(parents=True, exist_ok=True)
            git(self.root, "mv", old, new)
        for path in delete:
            git(self.root, "rm", "-q", "-r", path)
        for path, content in (write or {}).items():
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        sha = git(self.root, "rev-parse", "HEAD").decode().strip()
        self.commits.append(sha)
        return sha

    def reset(self, sha: str) -> None:
        """Move the branch back to `sha` (what a force-push does); later commits rewrite it."""
        git(self.root, "reset", "-q", "--hard", sha)

    def forget_unreachable(self) -> None:
        """Drop commits no branch reaches, as GitHub eventually does after a force-push."""
        git(self.root, "reflog", "expire", "--expire-unreachable=now", "--all")
        git(self.root, "gc", "-q", "--prune=now")

    def copy_in(self, source: Path) -> None:
        shutil.copytree(source, self.root, dirs_exist_ok=True)


def error(status: int, message: str, docs: str = DOCS) -> httpx.Response:
    return httpx.Response(
        status, json={"message": message, "documentation_url": docs, "status": str(status)}
    )


def rate_limit_answer(
    kind: str, *, retry_after: int = 30, reset: int | None = None
) -> httpx.Response:
    """The rate-limit answers GitHub's docs describe (tests/contracts/github/FACTS.md):
    `primary` (403, `x-ratelimit-remaining: 0`, `x-ratelimit-reset`), `primary-429`,
    `secondary` (403 with neither `retry-after` nor remaining 0: wait at least a
    minute), `secondary-retry-after` (403 + `retry-after`), `secondary-429` (429 +
    `retry-after`)."""
    reset = int(time.time()) + 1800 if reset is None else reset
    status = 429 if kind.endswith("-429") else 403
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-used": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(reset),
        "x-ratelimit-resource": "core",
    }
    if kind.startswith("primary"):
        body = {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
        }
    else:
        headers.update({"x-ratelimit-used": "12", "x-ratelimit-remaining": "4988"})
        if kind != "secondary":
            headers["retry-after"] = str(retry_after)
        body = dict(SECONDARY_BODY)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeGitHub:
    history: History
    head: str = ""  # what the branch's head lookup answers
    branch: str = "main"
    token: str | None = "ghp_testtoken"
    requests: list[str] = field(default_factory=list)
    # Every API request answers this (it must fit the description too).
    fail_with: httpx.Response | None = None
    # Rate limits to answer: [path fragment or "", kind, times left, options].
    limits: list[list[Any]] = field(default_factory=list)
    links: set[str] = field(default_factory=set)  # codeload tokens handed out

    def __post_init__(self) -> None:
        self._api = checked(self._answer, limit=self._limited)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def rate_limit(self, kind: str, *, on: str = "", times: int = 1, **options: Any) -> None:
        """The next `times` requests whose path holds `on` answer a rate limit
        (`rate_limit_answer(kind, **options)`)."""
        self.limits.append([on, kind, times, options])

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.host == "codeload.github.com":
            return self._codeload(request)
        assert request.url.host == "api.github.com", request.url
        return self._api(request)

    # -- the API -------------------------------------------------------------------

    def _limited(self, request: httpx.Request) -> httpx.Response | None:
        for limit in self.limits:
            on, kind, times, options = limit
            if times > 0 and on in request.url.path:
                limit[2] -= 1
                return rate_limit_answer(kind, **options)
        return None

    def _answer(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        if self.token:
            assert request.headers["Authorization"] == f"Bearer {self.token}"
        if self.fail_with is not None:
            return self.fail_with
        path = request.url.path
        base = f"/repos/{OWNER_REPO}"
        if not path.startswith(base + "/"):
            return error(404, "Not Found")
        endpoint, _, rest = path.removeprefix(base + "/").partition("/")
        if endpoint == "commits":
            assert request.headers["Accept"] == "application/vnd.github.sha"
            sha = self.head if rest == self.branch else self._resolve(rest)
            if sha is None:
                return httpx.Response(
                    422,
                    json={
                        "message": f"No commit found for SHA: {rest}",
                        "documentation_url": f"{DOCS}/commits/commits#get-a-commit",
                    },
                )
            return httpx.Response(
                200, text=sha, headers={"Content-Type": "application/vnd.github.sha"}
            )
        if endpoint == "compare":
            assert request.headers["Accept"] == "application/vnd.github+json"
            old, _, new = rest.partition("...")
            params = request.url.params
            paged = "per_page" in params or "page" in params
            page = int(params.get("page", 1))
            per_page = min(int(params.get("per_page", 30)), 100)
            return self._compare(old, new, page=page, per_page=per_page if paged else None)
        if endpoint == "contents":
            assert request.headers["Accept"] == "application/vnd.github.raw+json"
            ref = request.url.params.get("ref", self.head)
            try:
                content = git(self.history.root, "cat-file", "blob", f"{ref}:{rest}")
            except subprocess.CalledProcessError:
                return error(404, "Not Found", f"{DOCS}/repos/contents#get-repository-content")
            # The raw media type: the file's bytes (the description has no entry for it,
            # so no Content-Type that it would refuse).
            return httpx.Response(200, content=content)
        if endpoint == "tarball":
            link = secrets.token_hex(8)
            self.links.add(link)
            location = f"https://codeload.github.com/{OWNER_REPO}/legacy.tar.gz/{rest}"
            return httpx.Response(302, headers={"Location": f"{location}?token={link}"})
        return error(404, "Not Found")

    def _resolve(self, ref: str) -> str | None:
        return resolve(self.history.root, ref)

    # -- compare ----------------------------------------------------------------------

    def compare(self, old: str, new: str) -> dict[str, Any]:
        """The first page of what Lens's compare gets (per_page=100), as JSON."""
        return self._compare(old, new, page=1, per_page=100).json()

    def _compare(self, old: str, new: str, *, page: int, per_page: int | None) -> httpx.Response:
        docs = f"{DOCS}/commits/commits#compare-two-commits"
        base, head = self._resolve(old), self._resolve(new)
        if base is None or head is None:
            return error(404, "Not Found", docs)
        try:
            merge_base = git(self.history.root, "merge-base", base, head).decode().strip()
        except subprocess.CalledProcessError:
            return error(404, f"No common ancestor between {old} and {new}.", docs)
        ahead = self._range(base, head)
        behind = self._range(head, base)
        if not ahead and not behind:
            status = "identical"
        elif not behind:
            status = "ahead"
        elif not ahead:
            status = "behind"
        else:
            status = "diverged"
        body: dict[str, Any] = {
            "url": f"{API}/repos/{OWNER_REPO}/compare/{old}...{new}",
            "html_url": f"{WEB}/{OWNER_REPO}/compare/{old}...{new}",
            "permalink_url": f"{WEB}/{OWNER_REPO}/compare/{OWNER}:{base}...{OWNER}:{head}",
            "diff_url": f"{WEB}/{OWNER_REPO}/compare/{old}...{new}.diff",
            "patch_url": f"{WEB}/{OWNER_REPO}/compare/{old}...{new}.patch",
            "base_commit": self._commits([base])[0],
            "merge_base_commit": self._commits([merge_base])[0],
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
        }
        headers: dict[str, str] = {}
        if per_page is None:
            body["commits"] = self._commits(ahead[-UNPAGED_COMMITS:])
            body["files"] = self._files(merge_base, head)[:COMPARE_FILES]
        else:
            start = (page - 1) * per_page
            body["commits"] = self._commits(ahead[start : start + per_page])
            if page == 1:
                body["files"] = self._files(merge_base, head)[:COMPARE_FILES]
            last = max(1, -(-len(ahead) // per_page))
            if page < last:
                url = f"{API}/repos/{OWNER_REPO}/compare/{old}...{new}?per_page={per_page}"
                headers["Link"] = (
                    f'<{url}&page={page + 1}>; rel="next", <{url}&page={last}>; rel="last"'
                )
        return httpx.Response(200, json=body, headers=headers)

    def _range(self, old: str, new: str) -> list[str]:
        return commit_range(self.history.root, old, new)

    def _commits(self, shas: list[str]) -> list[dict[str, Any]]:
        if not shas:
            return []
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x1e"
        out = git(self.history.root, "log", "--no-walk=unsorted", f"--format={fmt}", *shas).decode()
        commits = []
        for record in out.split("\x1e"):
            if not record.strip():
                continue
            sha, tree, parents, an, ae, ad, cn, ce, cd, message = record.lstrip("\n").split("\0")
            commits.append(
                {
                    "url": f"{API}/repos/{OWNER_REPO}/commits/{sha}",
                    "sha": sha,
                    "node_id": f"C_kwDO{sha[:24]}",
                    "html_url": f"{WEB}/{OWNER_REPO}/commit/{sha}",
                    "comments_url": f"{API}/repos/{OWNER_REPO}/commits/{sha}/comments",
                    "commit": {
                        "url": f"{API}/repos/{OWNER_REPO}/git/commits/{sha}",
                        "author": {"name": an, "email": ae, "date": ad},
                        "committer": {"name": cn, "email": ce, "date": cd},
                        "message": message.rstrip("\n"),
                        "comment_count": 0,
                        "tree": {"sha": tree, "url": f"{API}/repos/{OWNER_REPO}/git/trees/{tree}"},
                        "verification": {
                            "verified": False,
                            "reason": "unsigned",
                            "signature": None,
                            "payload": None,
                            "verified_at": None,
                        },
                    },
                    # The author's e-mail belongs to no GitHub account.
                    "author": None,
                    "committer": None,
                    "parents": [
                        {
                            "sha": p,
                            "url": f"{API}/repos/{OWNER_REPO}/commits/{p}",
                            "html_url": f"{WEB}/{OWNER_REPO}/commit/{p}",
                        }
                        for p in parents.split()
                    ],
                }
            )
        return commits

    def _files(self, base: str, head: str) -> list[dict[str, Any]]:
        root = self.history.root
        raw = git(root, "diff", "--raw", "-z", "-M", "--no-abbrev", base, head).decode()
        counts = self._numstat(base, head)
        parts = raw.split("\0")
        files = []
        i = 0
        while i < len(parts) - 1:
            _, _, old_sha, new_sha, letter = parts[i].lstrip(":").split()
            kind = letter[0]
            if kind in "RC":
                previous, path = parts[i + 1], parts[i + 2]
                i += 3
            else:
                previous, path = None, parts[i + 1]
                i += 2
            status = {
                "A": "added",
                "M": "modified",
                "D": "removed",
                "R": "renamed",
                "C": "copied",
                "T": "changed",
            }[kind]
            additions, deletions = counts.get(path, (0, 0))
            quoted = quote(path)
            entry: dict[str, Any] = {
                "sha": old_sha if kind == "D" else new_sha,
                "filename": path,
                "status": status,
                "additions": additions,
                "deletions": deletions,
                "changes": additions + deletions,
                "blob_url": f"{WEB}/{OWNER_REPO}/blob/{head}/{quoted}",
                "raw_url": f"{WEB}/{OWNER_REPO}/raw/{head}/{quoted}",
                "contents_url": f"{API}/repos/{OWNER_REPO}/contents/{quoted}?ref={head}",
            }
            if previous is not None:
                entry["previous_filename"] = previous
            files.append(entry)
        return files

    def _numstat(self, base: str, head: str) -> dict[str, tuple[int, int]]:
        out = git(self.history.root, "diff", "--numstat", "-z", "-M", base, head).decode()
        parts = out.split("\0")
        counts: dict[str, tuple[int, int]] = {}
        i = 0
        while i < len(parts) - 1:
            added, deleted, path = parts[i].split("\t", 2)
            if path:
                i += 1
            else:  # a rename: the old and the new path follow
                path = parts[i + 2]
                i += 3
            counts[path] = (
                int(added) if added.isdigit() else 0,
                int(deleted) if deleted.isdigit() else 0,
            )
        return counts

    # -- codeload: where the tarball's 302 points (not part of the API) -----------------

    def _codeload(self, request: httpx.Request) -> httpx.Response:
        # A cross-origin redirect must not carry the API token; the link has its own.
        assert "Authorization" not in request.headers
        link = request.url.params.get("token", "")
        if link not in self.links:
            return httpx.Response(404, text="404: Not Found")
        self.links.discard(link)  # links are short-lived; one download each here
        owner_repo, _, ref = request.url.path.strip("/").partition("/legacy.tar.gz/")
        assert owner_repo == OWNER_REPO, request.url
        sha = self._resolve(unquote(ref))
        if sha is None:
            return httpx.Response(404, text="404: Not Found")
        prefix = f"{OWNER}-{REPO}-{sha[:7]}/"
        data = git(self.history.root, "archive", "--format=tar.gz", f"--prefix={prefix}", sha)
        return httpx.Response(200, content=data, headers={"Content-Type": "application/x-gzip"})

    # -- the push webhook (tests/content/github_push.py) -------------------------------

    def push_event(self, sha: str, branch: str = "main", *, before: str | None = None) -> bytes:
        """The body GitHub posts for a push of `branch` to `sha` (from `before`, by
        default the commit's parent), as the description's `webhook-push` has it."""
        from tests.content.github_push import push_event

        return push_event(self.history.root, sha, branch, before=before)

    def delivery_headers(self, event: str = "push") -> dict[str, str]:
        """The headers of a webhook delivery, but its signature (the test signs)."""
        from tests.content.github_push import delivery_headers

        return delivery_headers(event)

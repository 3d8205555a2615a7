"""A fake GitHub API over httpx.MockTransport, answering from a real local git repository.

It serves the endpoints Lens uses with GitHub's documented response shapes, checks the
headers Lens must send, and counts requests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import httpx

OWNER_REPO = "lens-test/course-content"


def git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, input=input
    ).stdout


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

    def copy_in(self, source: Path) -> None:
        shutil.copytree(source, self.root, dirs_exist_ok=True)


@dataclass
class FakeGitHub:
    history: History
    head: str = ""
    token: str | None = "ghp_testtoken"
    requests: list[str] = field(default_factory=list)
    fail_with: httpx.Response | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.url.host == "codeload.github.com":
            ref = request.url.path.rsplit("/", 1)[-1]
            prefix = f"lens-test-course-content-{ref[:7]}/"
            data = git(self.history.root, "archive", "--format=tar.gz", f"--prefix={prefix}", ref)
            return httpx.Response(200, content=data, headers={"Content-Type": "application/x-gzip"})
        assert request.url.host == "api.github.com", request.url
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        if self.token:
            assert request.headers["Authorization"] == f"Bearer {self.token}"
        if self.fail_with is not None:
            return self.fail_with
        path = request.url.path
        base = f"/repos/{OWNER_REPO}"
        if path == f"{base}/commits/main":
            assert request.headers["Accept"] == "application/vnd.github.sha"
            return httpx.Response(200, text=self.head)
        if path.startswith(f"{base}/compare/"):
            old, new = path.removeprefix(f"{base}/compare/").split("...")
            return httpx.Response(200, json=self.compare(old, new))
        if path.startswith(f"{base}/contents/"):
            assert request.headers["Accept"] == "application/vnd.github.raw+json"
            file_path = unquote(path.removeprefix(f"{base}/contents/"))
            ref = request.url.params["ref"]
            try:
                content = git(self.history.root, "show", f"{ref}:{file_path}")
            except subprocess.CalledProcessError:
                return httpx.Response(404, json={"message": "Not Found"})
            return httpx.Response(200, content=content)
        if path.startswith(f"{base}/tarball/"):
            ref = path.rsplit("/", 1)[-1]
            return httpx.Response(
                302,
                headers={
                    "Location": f"https://codeload.github.com/{OWNER_REPO}/legacy.tar.gz/{ref}"
                },
            )
        return httpx.Response(404, json={"message": "Not Found"})

    def compare(self, old: str, new: str) -> dict:
        raw = git(self.history.root, "diff", "--name-status", "-M", old, new).decode()
        files = []
        for line in raw.splitlines():
            parts = line.split("\t")
            status = parts[0]
            if status.startswith("R"):
                files.append(
                    {"filename": parts[2], "previous_filename": parts[1], "status": "renamed"}
                )
            else:
                name = {"A": "added", "M": "modified", "D": "removed"}[status[0]]
                files.append({"filename": parts[1], "status": name})
        ahead = len(git(self.history.root, "rev-list", f"{old}..{new}").splitlines())
        return {"status": "ahead" if ahead else "identical", "ahead_by": ahead, "files": files}

    def push_event(self, sha: str, branch: str = "main") -> bytes:
        return json.dumps(
            {"ref": f"refs/heads/{branch}", "after": sha, "repository": {"full_name": OWNER_REPO}}
        ).encode()

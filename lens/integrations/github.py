"""GitHub REST API client for the content source: commits, compare, contents, tarball.

Speaks GitHub's real protocol (API version header, bearer token, rate-limit headers);
tests put an httpx.MockTransport underneath.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable

API = "https://api.github.com"
API_VERSION = "2022-11-28"
# The compare API lists at most 300 files; a longer list may be cut short.
COMPARE_FILE_LIMIT = 300


class RateLimited(IntegrationUnavailable):
    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at  # unix time


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str  # added, modified, removed, renamed, copied, changed, unchanged
    previous_path: str | None = None


class GitHub(Protocol):
    async def head_commit(self, repo: str, branch: str) -> str: ...

    async def compare(self, repo: str, base: str, head: str) -> list[ChangedFile] | None: ...

    async def file_text(self, repo: str, path: str, ref: str) -> str: ...

    async def file_bytes(
        self, repo: str, path: str, ref: str, *, limit: int | None = None
    ) -> bytes | None: ...

    async def tarball(self, repo: str, ref: str) -> bytes: ...


class GitHubClient:
    def __init__(self, http: httpx.AsyncClient, *, token: str | None = None) -> None:
        self.http = http
        self.token = token
        self.requests = 0  # for the sync's own accounting and tests

    def _headers(self, accept: str = "application/vnd.github+json") -> dict[str, str]:
        headers = {"Accept": accept, "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _get(self, path: str, *, accept: str | None = None, **kw: Any) -> httpx.Response:
        self.requests += 1
        try:
            response = await self.http.get(
                API + path, headers=self._headers(accept or "application/vnd.github+json"), **kw
            )
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"GitHub unreachable: {type(exc).__name__}") from exc
        _raise_for_status(response)
        return response

    async def head_commit(self, repo: str, branch: str) -> str:
        response = await self._get(
            f"/repos/{repo}/commits/{quote(branch, safe='')}", accept="application/vnd.github.sha"
        )
        return response.text.strip()

    async def compare(self, repo: str, base: str, head: str) -> list[ChangedFile] | None:
        """Files changed between two commits, or None when the list may be incomplete."""
        try:
            response = await self._get(
                f"/repos/{repo}/compare/{base}...{head}", params={"per_page": 100}
            )
        except IntegrationRejected:
            return None  # e.g. the old commit is gone after a force-push
        data = response.json()
        files = data.get("files")
        if files is None or len(files) >= COMPARE_FILE_LIMIT:
            return None
        if data.get("status") not in ("ahead", "identical"):
            return None  # diverged or behind: a full sync is the safe answer
        return [ChangedFile(f["filename"], f["status"], f.get("previous_filename")) for f in files]

    async def file_text(self, repo: str, path: str, ref: str) -> str:
        response = await self._get(
            f"/repos/{repo}/contents/{quote(path)}",
            params={"ref": ref},
            accept="application/vnd.github.raw+json",
        )
        return response.content.decode("utf-8", errors="replace")

    async def file_bytes(
        self, repo: str, path: str, ref: str, *, limit: int | None = None
    ) -> bytes | None:
        """A file's raw bytes, or None when it is larger than `limit` (found out without
        downloading more than `limit` bytes of it)."""
        self.requests += 1
        try:
            async with self.http.stream(
                "GET",
                f"{API}/repos/{repo}/contents/{quote(path)}",
                params={"ref": ref},
                headers=self._headers("application/vnd.github.raw+json"),
            ) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_for_status(response)
                length = response.headers.get("content-length", "")
                if limit is not None and length.isdigit() and int(length) > limit:
                    return None
                chunks: list[bytes] = []
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if limit is not None and received > limit:
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(f"GitHub unreachable: {type(exc).__name__}") from exc

    async def tarball(self, repo: str, ref: str) -> bytes:
        # Answers with a redirect to a download host; follow it.
        response = await self._get(f"/repos/{repo}/tarball/{ref}", follow_redirects=True)
        return response.content


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    status = response.status_code
    remaining = response.headers.get("x-ratelimit-remaining")
    if status in (403, 429) and (remaining == "0" or "retry-after" in response.headers):
        retry_after = response.headers.get("retry-after")
        if retry_after and retry_after.isdigit():
            retry_at = time.time() + int(retry_after)
        else:
            retry_at = float(response.headers.get("x-ratelimit-reset") or time.time() + 60)
        raise RateLimited(f"GitHub rate limit reached (HTTP {status})", retry_at)
    if status >= 500 or status == 429:
        raise IntegrationUnavailable(f"GitHub answered HTTP {status}")
    message = ""
    with contextlib.suppress(ValueError):
        message = response.json().get("message", "")
    raise IntegrationRejected(f"GitHub answered HTTP {status}: {message}".rstrip(": "))

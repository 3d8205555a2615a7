"""GitHub REST API client for the content source: commits, compare, contents, tarball.

Speaks GitHub's real protocol (API version header, bearer token, rate-limit answers as
GitHub's REST docs describe them); tests put an httpx.MockTransport underneath.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable

API = "https://api.github.com"
API_VERSION = "2022-11-28"
# Compare, asked with a paging parameter (Lens sends per_page), lists "up to 300 changed
# files for the entire comparison": a list this long may have been cut short.
COMPARE_FILE_LIMIT = 300
# A secondary rate limit without a retry-after or a reset: "wait for at least one minute".
SECONDARY_WAIT_SECONDS = 60
# GitHub gives no exact text, only "an error message that indicates that you exceeded a
# secondary rate limit".
_SECONDARY = re.compile(r"secondary[ -]rate[ -]limit", re.IGNORECASE)


class RateLimited(IntegrationUnavailable):
    """GitHub's primary or secondary rate limit: no request before `retry_at`."""

    def __init__(self, message: str, retry_at: float, *, secondary: bool = False) -> None:
        super().__init__(message)
        self.retry_at = retry_at  # unix time
        # A secondary limit: retries that keep meeting it wait exponentially longer.
        self.secondary = secondary


class GitHubRejected(IntegrationRejected):
    """GitHub refused the request (a 4xx other than a rate limit)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str  # added, modified, removed, renamed, copied, changed, unchanged
    previous_path: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The files changed from one commit to another, or (`files` None) why that list
    cannot be trusted and only reading everything is safe: `reason` is `behind`,
    `diverged`, `truncated`, `base_not_found` or `no_files`."""

    files: list[ChangedFile] | None
    reason: str | None = None
    status: str | None = None  # compare's own: ahead, identical, behind, diverged


class GitHub(Protocol):
    async def head_commit(self, repo: str, branch: str) -> str: ...

    async def compare(self, repo: str, base: str, head: str) -> Comparison: ...

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

    async def compare(self, repo: str, base: str, head: str) -> Comparison:
        """The files changed from `base` to `head`, when GitHub's list says all of it.

        A rate limit or an outage raises (the sync is retried: a full read would meet
        the same limit); only a list that cannot be trusted asks for a full read.
        """
        try:
            response = await self._get(
                f"/repos/{repo}/compare/{base}...{head}", params={"per_page": 100}
            )
        except GitHubRejected as exc:
            if exc.status == 404:  # the base is gone (a force-push, then GitHub's clean-up)
                return Comparison(None, "base_not_found")
            raise
        data = response.json()
        status = data.get("status")
        # `base...head` lists what changed since the merge base: when the base is not an
        # ancestor of the head (behind, diverged), the list misses the base's own changes.
        if status not in ("ahead", "identical"):
            reason = status if status in ("behind", "diverged") else "status"
            return Comparison(None, reason, status)
        files = data.get("files")
        if files is None:
            return Comparison(None, "no_files", status)
        if len(files) >= COMPARE_FILE_LIMIT:
            return Comparison(None, "truncated", status)
        return Comparison(
            [ChangedFile(f["filename"], f["status"], f.get("previous_filename")) for f in files],
            status=status,
        )

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
    message = ""
    with contextlib.suppress(ValueError, AttributeError):
        message = str(response.json().get("message") or "")
    limited = _rate_limit(response, message)
    if limited is not None:
        raise limited
    if status >= 500:
        raise IntegrationUnavailable(f"GitHub answered HTTP {status}")
    raise GitHubRejected(f"GitHub answered HTTP {status}: {message}".rstrip(": "), status)


def _rate_limit(response: httpx.Response, message: str) -> RateLimited | None:
    """GitHub's rate limits, as its REST docs describe them ("Exceeding the rate limit"):
    a 403 or 429; wait `retry-after` seconds when present; else, with
    `x-ratelimit-remaining: 0`, until the `x-ratelimit-reset` epoch; else, for a
    secondary limit (said by the error message, or a 429 that says nothing more), at
    least a minute. Anything but an exhausted primary limit counts as secondary."""
    status = response.status_code
    if status not in (403, 429):
        return None
    headers = response.headers
    now = time.time()
    said = bool(_SECONDARY.search(message))
    exhausted = headers.get("x-ratelimit-remaining") == "0"
    secondary = said or not exhausted
    name = "secondary rate limit" if secondary else "rate limit"
    retry_after = _seconds(headers.get("retry-after", ""), now)
    if retry_after is not None:
        what = f"GitHub {name} (HTTP {status}, retry-after {retry_after:.0f} s)"
        return RateLimited(what, now + retry_after, secondary=secondary)
    if exhausted:
        reset = headers.get("x-ratelimit-reset", "").strip()
        retry_at = float(reset) if reset.isdigit() else now + SECONDARY_WAIT_SECONDS
        return RateLimited(f"GitHub {name} (HTTP {status})", retry_at, secondary=secondary)
    if said or status == 429:
        what = f"GitHub {name} (HTTP {status})"
        return RateLimited(what, now + SECONDARY_WAIT_SECONDS, secondary=True)
    return None  # a plain 403: the token may not read this


def _seconds(value: str, now: float) -> float | None:
    """A `retry-after` value: seconds, or (allowed by HTTP) a date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    if not value:
        return None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None

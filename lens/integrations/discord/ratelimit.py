"""Discord's rate limits and invalid-request budget, kept once per process.

Discord limits each bot globally and per route, and bans an IP address for a while after
10,000 answers of 401, 403 or 429 in ten minutes (Discord's "Rate Limits" topic; quoted in
tests/contracts/discord/FACTS.md). A web or worker process makes many short-lived clients
(one per job, per delivery, per sign-in), so what Discord said is kept here, shared by
every Discord REST request of the process (`process_limits()`):

- a global 429 (`"global": true`, `X-RateLimit-Scope: global`) pauses every request until
  it ends, and so does a 429 that is not Discord's own JSON (Cloudflare's ban page);
- per-route buckets: `X-RateLimit-Bucket` names a bucket, which several routes may share,
  counted per top-level resource (channel, guild, webhook) in the path; a bucket with
  `X-RateLimit-Remaining: 0` waits `X-RateLimit-Reset-After` before its next request, and
  a 429 on a route waits its `retry_after`;
- invalid answers (401, 403, and 429 except `X-RateLimit-Scope: shared`, which Discord
  does not count) are counted over a sliding ten minutes. From `soft_limit` (9,000) on,
  requests that can wait (everything but a person's messages and sign-ins) are refused
  without being sent and an error is logged; from `hard_limit` (9,900) on, every request.

A wait longer than the caller's `max_wait` is not slept: it becomes IntegrationUnavailable,
and the job runner retries later. Other processes keep their own view; Discord's 429 is
the shared truth between them. Nothing here holds an asyncio object, so one instance
serves any event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from lens.errors import IntegrationUnavailable
from lens.logging import get_logger

log = get_logger("lens.discord")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

INVALID_WINDOW = 600.0  # seconds: Discord counts invalid requests over ten minutes
INVALID_BAN_AT = 10_000
INVALID_SOFT_LIMIT = 9_000
INVALID_HARD_LIMIT = 9_900
_TOP_LEVEL = ("channels", "guilds", "webhooks")
_SNOWFLAKE = re.compile(r"^\d{1,20}$")


@dataclass(frozen=True)
class Route:
    """A request's rate-limit identity: method and path with ids left out, plus the
    top-level resource, which Discord counts separately ("channels/123")."""

    method: str
    template: str
    major: str

    @classmethod
    def of(cls, method: str, path: str) -> Route:
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        major = ""
        template: list[str] = []
        for i, part in enumerate(parts):
            before = parts[i - 1] if i else ""
            if _SNOWFLAKE.match(part):
                if not major and before in _TOP_LEVEL:
                    major = f"{before}/{part}"
                template.append("{id}")
            elif i >= 2 and parts[i - 2] == "webhooks":
                template.append("{token}")  # never a secret in a key or a log line
            else:
                template.append(part)
        return cls(method.upper(), "/" + "/".join(template), major)

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class _Bucket:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float = 0.0


class RateLimits:
    """What Discord told this process about its limits (see the module's docstring)."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        invalid_window: float = INVALID_WINDOW,
        soft_limit: int = INVALID_SOFT_LIMIT,
        hard_limit: int = INVALID_HARD_LIMIT,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.invalid_window = invalid_window
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.global_until = 0.0
        self._bucket_of: dict[str, str] = {}  # route key -> X-RateLimit-Bucket
        self._buckets: dict[str, _Bucket] = {}
        self._invalid: deque[float] = deque()
        self._warned = False

    def __repr__(self) -> str:
        return f"RateLimits(buckets={len(self._buckets)}, invalid={len(self._invalid)})"

    # -- before a request ----------------------------------------------------------------

    async def acquire(self, route: Route, *, max_wait: float, essential: bool) -> None:
        """Wait until `route` may be sent (at most `max_wait` seconds), counting the
        request against its bucket; IntegrationUnavailable when it may not be sent."""
        while True:
            self.check_budget(essential=essential)
            now = self.clock()
            wait = self.global_until - now
            what = f"every request waits {wait:g} s (global limit)"
            if wait <= 0:
                bucket = self._buckets.get(self._bucket_key(route))
                if bucket is None or bucket.remaining is None:
                    return
                if bucket.reset_at <= now:
                    # Refilled; the answer to this request says how many are left.
                    bucket.remaining = None
                    return
                if bucket.remaining > 0:
                    bucket.remaining -= 1
                    return
                wait = bucket.reset_at - now
                what = f"{route.key} is free in {wait:g} s"
            if wait > max_wait:
                raise IntegrationUnavailable(f"Discord rate limit: {what}")
            await self.sleep(wait)

    def check_budget(self, *, essential: bool) -> None:
        """Refuse to send near Discord's invalid-request ban (see the module's docstring)."""
        count = self.invalid_requests()
        if count >= self.hard_limit or (count >= self.soft_limit and not essential):
            raise IntegrationUnavailable(
                f"Discord: {count} invalid requests (401/403/429) in the last "
                f"{self.invalid_window / 60:g} minutes; holding "
                f"{'every request' if count >= self.hard_limit else 'requests that can wait'} "
                f"to stay clear of the ban at {INVALID_BAN_AT}"
            )

    def invalid_requests(self) -> int:
        """401, 403 and counted 429 answers within the window."""
        cutoff = self.clock() - self.invalid_window
        while self._invalid and self._invalid[0] <= cutoff:
            self._invalid.popleft()
        if self._warned and len(self._invalid) < self.soft_limit:
            self._warned = False
        return len(self._invalid)

    # -- after an answer -----------------------------------------------------------------

    def record(self, route: Route, response: httpx.Response) -> None:
        """Learn from an answer's rate-limit headers, 429 body and status."""
        now = self.clock()
        headers = response.headers
        name = headers.get("X-RateLimit-Bucket")
        if name:
            old = self._bucket_key(route)
            self._bucket_of[route.key] = name
            new = self._bucket_key(route)
            if old != new and old in self._buckets:
                self._buckets.setdefault(new, self._buckets.pop(old))
        remaining = _count(headers.get("X-RateLimit-Remaining"))
        reset_after = seconds(headers.get("X-RateLimit-Reset-After"))
        if remaining is not None and reset_after is not None:
            bucket = self._buckets.setdefault(self._bucket_key(route), _Bucket())
            bucket.limit = _count(headers.get("X-RateLimit-Limit"))
            bucket.remaining = remaining
            bucket.reset_at = now + reset_after
        self.note(response)
        if response.status_code != 429:
            return
        wait = retry_after(response)
        if wait is None:
            return
        if is_global(response):
            self.global_until = max(self.global_until, now + wait)
            log.warning("discord.rate_limited.global", retry_after=wait, route=route.key)
            return
        # Per route ("user") or per resource ("shared"): this bucket waits.
        bucket = self._buckets.setdefault(self._bucket_key(route), _Bucket())
        bucket.remaining = 0
        bucket.reset_at = max(bucket.reset_at, now + wait)

    def note(self, response: httpx.Response) -> None:
        """Count an answer toward the invalid-request budget if Discord counts it."""
        status = response.status_code
        shared = response.headers.get("X-RateLimit-Scope") == "shared"
        if status not in (401, 403) and not (status == 429 and not shared):
            return
        self._invalid.append(self.clock())
        count = self.invalid_requests()
        if count >= self.soft_limit and not self._warned:
            self._warned = True
            log.error(
                "discord.invalid_requests.near_limit",
                count=count,
                window_seconds=self.invalid_window,
                ban_at=INVALID_BAN_AT,
                hint="requests that can wait are held; look for a revoked token, a "
                "missing permission or a loop of rate-limited calls",
            )

    def _bucket_key(self, route: Route) -> str:
        return f"{self._bucket_of.get(route.key, route.key)}|{route.major}"


def is_global(response: httpx.Response) -> bool:
    """A 429 that holds every request: Discord's global limit, or an answer that is not
    Discord's JSON at all (Cloudflare's ban page carries only Retry-After)."""
    headers = response.headers
    if headers.get("X-RateLimit-Global", "").lower() == "true":
        return True
    scope = headers.get("X-RateLimit-Scope")
    if scope == "global":
        return True
    data = _json(response)
    if isinstance(data, dict):
        return data.get("global") is True
    return scope is None


def retry_after(response: httpx.Response) -> float | None:
    """How long a 429 asks to wait: the body's `retry_after`, else the Retry-After header."""
    data = _json(response)
    if isinstance(data, dict):
        wait = seconds(data.get("retry_after"))
        if wait is not None:
            return wait
    # Cloudflare's 429s (an IP ban, not Discord's limiter) carry only the header.
    return seconds(response.headers.get("Retry-After"))


def seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(number, 0.0) if number == number else None  # NaN is not a wait


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


_process: RateLimits | None = None


def process_limits() -> RateLimits:
    """The one RateLimits of this process, used by every client not given another."""
    global _process
    if _process is None:
        _process = RateLimits()
    return _process

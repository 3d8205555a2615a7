"""Lens's own static files (CSS, scripts, vendored Swagger UI), cached for a year.

Pages link them as `/static/<path>?v=<hash>` (`static_url`), the hash being the file's
content's: a browser keeps the file until the file changes, and then the page links a new
address. A request with the current hash is answered `Cache-Control: public,
max-age=31536000, immutable`; one without (or with an old hash) `no-cache`, so it is
checked again (ETag) rather than kept.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

YEAR = 365 * 24 * 3600
RECHECK_SECONDS = 1.0


class HashedStaticFiles(StaticFiles):
    def __init__(self, *, directory: Path, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(directory=directory)
        self.clock = clock
        self.root = directory
        self._hashes: dict[str, tuple[float, str]] = {}
        # path -> (when last looked at, its URL): every page links a few files, and a
        # resolve and stat per link was 4 % of the reader's page.
        self._urls: dict[str, tuple[float, str]] = {}

    def file_hash(self, path: str) -> str:
        """The first 12 hex digits of the file's SHA-256, kept while its mtime stays."""
        file = (self.root / path).resolve()
        if not file.is_relative_to(self.root.resolve()):
            return ""
        try:
            mtime = file.stat().st_mtime
        except OSError:
            return ""
        known = self._hashes.get(path)
        if known is not None and known[0] == mtime:
            return known[1]
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
        self._hashes[path] = (mtime, digest)
        return digest

    def url(self, path: str) -> str:
        """The file's address with its hash; looked at again (an edited file gets a new
        one) at most once a second."""
        now = self.clock()
        known = self._urls.get(path)
        if known is not None and now - known[0] < RECHECK_SECONDS:
            return known[1]
        digest = self.file_hash(path)
        url = f"/static/{path}?v={digest}" if digest else f"/static/{path}"
        self._urls[path] = (now, url)
        return url

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
            current = self.file_hash(path)
            response.headers["Cache-Control"] = (
                f"public, max-age={YEAR}, immutable" if current and asked == current else "no-cache"
            )
        return response

"""Error tracking. Off unless SENTRY_DSN is set; never sends cookies or personal data."""

from __future__ import annotations

from typing import Any

import sentry_sdk

from lens import __version__
from lens.settings import Settings

_SCRUB_HEADERS = {"cookie", "authorization", "x-hub-signature-256", "set-cookie"}


def _scrub(event: Any, _hint: Any) -> Any:
    request = event.get("request") or {}
    request.pop("cookies", None)
    request.pop("data", None)
    headers = request.get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if name.lower() in _SCRUB_HEADERS:
                headers[name] = "[Filtered]"
    event.pop("user", None)
    return event


def init_sentry(settings: Settings) -> bool:
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=f"lens@{__version__}",
        traces_sample_rate=0.1,
        # No personal data: no user info, no request bodies, and no stack-frame
        # variables (a request's scope holds its cookies). _scrub drops what is left.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
        },
        before_send=_scrub,
        before_send_transaction=_scrub,
    )
    return True

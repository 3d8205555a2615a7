"""GitHub push webhook: verify, filter, queue a sync, answer at once."""

from __future__ import annotations

import hashlib
import hmac
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lens.auth.deps import AdminUser
from lens.content.deps import loaded_content
from lens.content.service import get_status, take_delivery
from lens.content.sources import source_from_settings
from lens.content.tasks import request_sync
from lens.db.engine import unit_of_work
from lens.errors import Unauthorized
from lens.logging import get_logger
from lens.web.state import get_lens

log = get_logger("lens.content")
router = APIRouter(prefix="/api/content", tags=["content"])


def check_signature(secret: str, body: bytes, header: str | None) -> bool:
    """GitHub's X-Hub-Signature-256: `sha256=` + HMAC-SHA256 of the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


@router.post("/webhook", status_code=202)
async def github_webhook(request: Request) -> JSONResponse:
    """Receives GitHub push events for the content repository."""
    lens = request.app.state.lens
    settings = lens.settings
    if not settings.github_webhook_secret:
        raise Unauthorized("Webhook is not configured: set GITHUB_WEBHOOK_SECRET.")
    body = await request.body()
    if not check_signature(
        settings.github_webhook_secret, body, request.headers.get("x-hub-signature-256")
    ):
        raise Unauthorized("Bad or missing X-Hub-Signature-256.")
    event = request.headers.get("x-github-event", "")
    if event == "ping":
        return JSONResponse({"status": "pong"}, status_code=200)
    if event != "push":
        return JSONResponse({"status": "ignored", "reason": f"event {event!r}"}, 202)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"status": "ignored", "reason": "body is not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse(
            {"status": "ignored", "reason": "body is not a JSON object"}, status_code=400
        )
    branch = settings.educational_content_branch
    repo = (payload.get("repository") or {}).get("full_name", "")
    if payload.get("ref") != f"refs/heads/{branch}":
        return JSONResponse({"status": "ignored", "reason": f"not branch {branch}"}, 202)
    if settings.content_repo and repo.lower() != settings.content_repo.lower():
        return JSONResponse({"status": "ignored", "reason": f"not repository {repo}"}, 202)
    # Each signed body is taken once: a replay (with any X-GitHub-Delivery, which the
    # signature does not cover) or GitHub's "Redeliver" changes nothing. Recorded with
    # the sync request, so a failure leaves the delivery free to be sent again.
    async with unit_of_work(lens.sessionmaker) as session:
        if not await take_delivery(session, delivery_id=hashlib.sha256(body).hexdigest()):
            log.info("content.webhook.replayed", delivery=request.headers.get("x-github-delivery"))
            return JSONResponse({"status": "ignored", "reason": "delivery already received"})
        job_id = await request_sync(session)
    if lens.runner is not None:
        lens.runner.wake()
    log.info("content.webhook.push", commit=str(payload.get("after", ""))[:12], queued=job_id)
    return JSONResponse({"status": "queued" if job_id else "already queued"}, 202)


@router.post("/refresh", status_code=202)
async def refresh(request: Request, admin: AdminUser, full: bool = False) -> JSONResponse:
    """Queue a content sync now (admins). `full=true` reads every file again."""
    lens = get_lens(request)
    async with unit_of_work(lens.sessionmaker) as session:
        job_id = await request_sync(session, full=full)
    if lens.runner is not None:
        lens.runner.wake()
    log.info("content.refresh.requested", user_id=admin.id, full=full)
    return JSONResponse({"status": "queued" if job_id else "already queued"}, 202)


@router.get("/status")
async def status(request: Request, admin: AdminUser) -> dict[str, object]:
    """Source, commit, last sync, counts, every file that cannot be served (with all its
    problems), and every file served with warnings."""
    lens = get_lens(request)
    async with lens.sessionmaker() as session:
        result = await get_status(
            session,
            source_name=source_from_settings(lens.settings, lens.http).name,
            content=loaded_content(request),
        )
    return {
        "source": result.source,
        "branch": lens.settings.educational_content_branch if lens.settings.content_repo else None,
        "commit": result.commit,
        "synced_at": result.synced_at.isoformat() if result.synced_at else None,
        "sync_seconds": result.sync_seconds,
        "full_sync": result.full_sync,
        "files": result.files,
        "courses": result.courses,
        "modules": result.modules,
        "invalid_files": [
            {"path": path, "problems": lines} for path, lines in result.invalid.items()
        ],
        "files_with_warnings": [
            {"path": path, "problems": lines} for path, lines in result.warnings.items()
        ],
        "last_attempt_at": result.last_attempt_at.isoformat() if result.last_attempt_at else None,
        "last_error": result.last_error,
    }

"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from lens.db import migrate
from lens.db.engine import READ_ONLY

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database reachable, migrations current, job runner alive."""
    lens = request.app.state.lens
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(5):
            async with lens.engine.connect() as conn:
                await conn.execution_options(**READ_ONLY)
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if checks["database"] == "ok":
        try:
            current = await migrate.current_revisions(lens.engine)
            heads = migrate.head_revisions()
            checks["migrations"] = (
                "ok"
                if current == heads
                else f"not current: at {sorted(current) or 'none'}, code needs {sorted(heads)}"
            )
        except Exception as exc:
            checks["migrations"] = f"unknown: {type(exc).__name__}"
    else:
        checks["migrations"] = "unknown: database unreachable"
    if lens.runner is None:
        checks["job_runner"] = "not run by this process"
    else:
        checks["job_runner"] = "ok" if lens.runner.alive else "not running"
    ready = all(v == "ok" or v == "not run by this process" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )

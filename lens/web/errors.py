"""One place that turns errors into responses: JSON for /api, a fragment for HTMX,
a page otherwise. Expected errors (LensError, HTTP errors) keep their status; anything
else is a bug: logged, reported to Sentry, and shown as a 500 without details."""

from __future__ import annotations

from http import HTTPStatus

import sentry_sdk
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lens.db.outage import database_unavailable
from lens.errors import LensError
from lens.logging import get_logger
from lens.web.templating import render

log = get_logger("lens.web")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path in ("/healthz", "/readyz")


def error_response(
    request: Request, *, status: int, message: str, details: object | None = None
) -> Response:
    request_id = getattr(request.state, "request_id", None)
    if wants_json(request):
        body: dict[str, object] = {"error": {"status": status, "message": message}}
        if details is not None:
            body["error"]["details"] = details  # type: ignore[index]
        if request_id:
            body["error"]["request_id"] = request_id  # type: ignore[index]
        return JSONResponse(body, status_code=status)
    if request.headers.get("hx-request") == "true":
        # HTMX swaps this into the page where the action was; 200 would hide the error
        # from htmx's own handling, so the status stays and the page opts in to swap it.
        return HTMLResponse(
            f'<p class="error" role="alert">{_escape(message)}</p>', status_code=status
        )
    title = _phrase(status)
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message, "request_id": request_id},
        status_code=status,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a non-standard code such as 499
        return "Error"


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_HTTP_MESSAGES = {
    404: "There is nothing at this address. Check the link, or go back to the start page.",
    405: "This address does not accept that kind of request.",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LensError)
    async def _lens_error(request: Request, exc: LensError) -> Response:
        return error_response(request, status=exc.status_code, message=exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        phrase = _phrase(exc.status_code)
        message = (
            exc.detail
            if isinstance(exc.detail, str) and exc.detail != phrase
            else _HTTP_MESSAGES.get(exc.status_code, phrase)
        )
        response = error_response(request, status=exc.status_code, message=message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg")}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'request'}: {p['message']}" for p in problems)
        return error_response(
            request, status=422, message=f"Please fix: {summary}", details=problems
        )


_OUT_OF_RANGE = (
    "out of int16 range",  # asyncpg, encoding a parameter for a smallint/integer/bigint
    "out of int32 range",
    "out of int64 range",
    "integer out of range",  # PostgreSQL itself
    "too large to convert to sqlite integer",  # sqlite3
    "int too big to convert",
)


def number_out_of_range(exc: BaseException) -> bool:
    """Whether the database refused a number (an id from the address or the query) too
    large for its column, on either dialect; the error may be wrapped a few times."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).lower()
        if isinstance(current, OverflowError | DBAPIError) and any(
            marker in text for marker in _OUT_OF_RANGE
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


RETRY_AFTER_SECONDS = 30


class UnhandledErrorMiddleware:
    """Turns a bug into a 500 page (or JSON) and a Sentry event, exactly once.

    Starlette's own catch-all re-raises after responding, so the server logs the same
    traceback again; catching here, inside the app, keeps one log line per bug.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if not response_started and database_unavailable(exc):
                # The database is down or restarting: a moment's problem, said as one. The
                # pool reconnects by itself once it is back (lens.db.engine).
                log.warning("http.database_unavailable", path=scope.get("path"), error=repr(exc))
                response = error_response(
                    Request(scope),
                    status=503,
                    message="Lens cannot reach its database just now. Please try again in "
                    "a minute; what you sent in this request was not saved.",
                )
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                await response(scope, receive, send)
                return
            if not response_started and number_out_of_range(exc):
                # An id in the address larger than any row's (the database cannot even
                # compare it): there is nothing there, as for any id not found.
                log.info("http.id_out_of_range", path=scope.get("path"))
                response = error_response(Request(scope), status=404, message=_HTTP_MESSAGES[404])
                await response(scope, receive, send)
                return
            log.error("http.unhandled", path=scope.get("path"), exc_info=exc)
            sentry_sdk.capture_exception(exc)
            if response_started:
                raise  # half a response is out; nothing sensible can follow it
            response = error_response(
                Request(scope),
                status=500,
                message="Something went wrong on our side. It has been reported; please "
                "try again in a moment.",
            )
            await response(scope, receive, send)

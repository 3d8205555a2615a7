"""Structured logs: dotted event names with fields, a request id on every line.

JSON in production (or LENS_LOG_FORMAT=json), readable console lines in development.
The standard library's loggers (uvicorn, alembic, apscheduler) go through the same
renderer so every line looks alike.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from typing import Any

import structlog

_SECRET_KEYS = {"password", "token", "secret", "cookie", "authorization", "api_key", "jwt"}


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    lowered = key.lower()
    return any(s in lowered for s in _SECRET_KEYS)


def _drop_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # A last line of defence: never print a field whose name says it is a secret.
    for key in list(event_dict):
        if _secret_name(str(key)):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(*, level: str = "INFO", json: bool = False) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        # Plain tracebacks: the rich default prints every frame's local variables,
        # which is slow and would put cookies and tokens in the log.
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    final: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info if json else _identity,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    global _access
    _access = (
        [*shared, renderer] if root.getEffectiveLevel() <= logging.INFO else [],
        _Named("lens.web"),
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our own request log replaces uvicorn's access log (it carries the request id).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    # litellm logs every model call at INFO (two lines a reply); ours say enough.
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    # httpx logs every request at INFO: a line per tutor reply, Discord call, e-mail...
    # (a cohort's burst of replies paid for 200 of them). Lens's own events name what
    # was called; at DEBUG they are all kept.
    if root.getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)


class _Named:
    """What structlog's stdlib processors read of a logger: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


# The request line's processors (empty: below the level) and logger, once configured.
_access: tuple[list[Any], _Named] | None = None


def log_request(**fields: Any) -> None:
    """Each request's line (`http.request`, lens.web): the same processors and format as
    every other line, written straight to stderr. Through the standard library (a
    LogRecord, the caller's frame looked up, a handler's lock) it cost about 30 µs of a
    0.6 ms page (bench/reader). Never an error, so an error tracker hooked into the
    standard library's logging loses nothing but this line as a breadcrumb."""
    if _access is None:  # logging not set up by Lens (a library's use, some tests)
        get_logger("lens.web").info("http.request", **fields)
        return
    processors, logger = _access
    if not processors:
        return
    event: Any = {**fields, "event": "http.request"}
    for processor in processors:
        event = processor(logger, "info", event)
    with contextlib.suppress(Exception):  # a closed or broken stderr must not fail a request
        sys.stderr.write(event + "\n")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record.

    A handler holding the stream it was made with keeps writing to it after it is
    replaced (a test runner's capture, a daemon's redirect) and fails on a closed file.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _identity(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return event_dict


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger

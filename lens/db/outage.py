"""Telling a database that cannot be reached from a bug: the web layer answers the first
with a 503 and a retry hint, and work already acknowledged waits in a spool
(lens/db/spool.py) instead of being lost."""

from __future__ import annotations

import socket

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

# asyncpg's errors for a server that is gone, restarting or full (by name: Lens does not
# import the driver).
_SERVER_GONE = {
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "AdminShutdownError",
    "CrashShutdownError",
    "TooManyConnectionsError",
    "ConnectionFailureError",
    "ClientCannotConnectError",
    # A statement prepared (and kept) before a migration changed its table: asyncpg
    # clears its cache and the next try works (SQLAlchemy's name, and asyncpg's).
    "InvalidCachePlanError",
    "InvalidCachedStatementError",
}
_UNAVAILABLE_TEXT = (
    "database is locked",  # SQLite, busy past its timeout
    "unable to open database file",
    "connection refused",
    "connection was closed",
    "server closed the connection",
    "terminating connection",
    "the database system is",  # starting up / shutting down / in recovery mode
    "cached plan must not change result type",
    "connection is closed",
)
# asyncpg's own protocol, on a connection whose server went away between two of its
# messages (a terminate notice read, the closed socket not yet): the next statement
# finds the protocol still waiting for the dead server's answer.
# State 2 is "consuming an error until the server is ready again", which a dead server
# never is; another state "in progress" would be one connection used twice at once: a
# bug, left a 500.
_BROKEN_PROTOCOL_TEXT = (
    "another operation (2) is in progress",
    'protocol is in the "failed" state',
    "protocol is in an unexpected state",
)


def broken_protocol(exc: BaseException) -> bool:
    """Whether asyncpg raised because its connection's protocol is stuck mid-message (the
    server went away): that connection cannot be used again."""
    return type(exc).__name__ == "InternalClientError" and any(
        marker in str(exc) for marker in _BROKEN_PROTOCOL_TEXT
    )


def database_unavailable(exc: BaseException) -> bool:
    """Whether a request failed because the database could not be reached (down,
    restarting, the pool exhausted, SQLite busy), not because of a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SQLAlchemyTimeout):
            return True  # no connection free in the pool in time
        if isinstance(current, ConnectionError | socket.gaierror | TimeoutError) and _raised_by_db(
            current
        ):
            return True  # asyncpg's own connect, unwrapped: refused, unknown host, no answer
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__name__ in _SERVER_GONE or broken_protocol(current):
            return True
        from_driver = type(current).__module__.startswith("asyncpg")  # unwrapped (read_rows)
        if (isinstance(current, DBAPIError | OSError) or from_driver) and any(
            marker in str(current).lower() for marker in _UNAVAILABLE_TEXT
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


_DB_CODE = ("/asyncpg/", "/sqlalchemy/", "/aiosqlite/")


def _raised_by_db(exc: BaseException) -> bool:
    """Whether the database driver raised it (not a vendor's HTTP client)."""
    tb = exc.__traceback__
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename for part in _DB_CODE):
            return True
        tb = tb.tb_next
    return False

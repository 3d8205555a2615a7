"""Expected outcomes carry their HTTP status; everything else is a bug (a 500)."""

from __future__ import annotations


class LensError(Exception):
    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(LensError):
    status_code = 404


class Forbidden(LensError):
    status_code = 403


class Unauthorized(LensError):
    status_code = 401


class Conflict(LensError):
    status_code = 409


class Invalid(LensError):
    status_code = 422


class RateLimited(LensError):
    status_code = 429


class IntegrationUnavailable(Exception):
    """A vendor failed in a way worth retrying later (timeouts, 5xx, rate limits)."""


class IntegrationRejected(Exception):
    """A vendor refused the request; retrying the same request will not help."""

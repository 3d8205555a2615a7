"""Query parameters read by hand, for the few plain (non-FastAPI) routes on the hot path:
the same values FastAPI would take, and the same 422 (RequestValidationError) when one
is malformed."""

from __future__ import annotations

import re

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request

_WHOLE_DECIMAL = re.compile(r"^([+-]?\d+)\.0*$")
_TRUE = {"1", "true", "on", "yes", "y", "t"}
_FALSE = {"0", "false", "off", "no", "n", "f"}


def _invalid(name: str, raw: str, kind: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": ("query", name), "msg": message, "input": raw}]
    )


def query_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    whole = _WHOLE_DECIMAL.match(text)  # "2.0", as pydantic takes it ("2.5" is not)
    try:
        return int(whole.group(1) if whole else text)
    except ValueError:
        raise _invalid(
            name, raw, "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        ) from None  # fmt: skip


def query_bool(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(
        name, raw, "bool_parsing", "Input should be a valid boolean, unable to interpret input"
    )

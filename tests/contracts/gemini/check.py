"""Gemini's discovery excerpt as JSON Schema, to check recorded streams and Lens's requests.

Uses the discovery converter of ../google_calendar/check.py (objects closed, `$ref` by
schema id, the undefined `MediaResolution` allowed as anything). Two things the
discovery document does not say, and how they are taken here:

- Request field names: the document uses lowerCamelCase (`systemInstruction`,
  `generationConfig.maxOutputTokens`); Google's JSON parser also takes the proto field
  names in snake_case (the proto3 JSON mapping accepts both), which is what litellm sends
  (`system_instruction`, `max_output_tokens`). Requests are checked after turning
  snake_case names into lowerCamelCase.
- Errors: the Google error envelope `{"error": {"code", "message", "status", "details"}}`;
  its inner object is the document's `Status` plus the canonical `status` name.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from tests.contracts.google_calendar.check import discovery_validator
from tests.contracts.validator import VIOLATIONS, ContractViolation

HERE = Path(__file__).parent


@cache
def document() -> dict[str, Any]:
    return json.loads((HERE / "discovery.excerpt.json").read_text(encoding="utf-8"))


@cache
def _validator(name: str) -> Draft202012Validator:
    return discovery_validator(document(), {"$ref": name})


def camel(value: Any) -> Any:
    """snake_case keys as lowerCamelCase, all the way down."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key): camel(item)
            for key, item in value.items()
        }
    return value


def check_request(body: Any, what: str = "GenerateContentRequest") -> None:
    _check(_validator("GenerateContentRequest"), camel(body), what)


def check_chunk(value: Any, what: str = "stream chunk") -> None:
    """One `data:` event of `streamGenerateContent?alt=sse`: a GenerateContentResponse."""
    _check(_validator("GenerateContentResponse"), value, what)


def check_error(value: Any, what: str = "error") -> None:
    if (
        not isinstance(value, dict)
        or set(value) != {"error"}
        or not isinstance(value["error"], dict)
    ):
        _fail(what, 'not the error envelope {"error": {...}}')
        return
    status = dict(value["error"])
    if not isinstance(status.pop("status", ""), str):
        _fail(what, "error.status is not a string")
    _check(_validator("Status"), status, what)
    for key in ("code", "message"):
        if key not in status:
            _fail(what, f"error.{key} is missing")


def _check(validator: Draft202012Validator, value: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        place = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        _fail(what, f"at {place}: {errors[0].message[:300]}")


def _fail(what: str, detail: str) -> None:
    message = f"gemini contract: {what}: {detail}"
    VIOLATIONS.append(message)
    raise ContractViolation(message)

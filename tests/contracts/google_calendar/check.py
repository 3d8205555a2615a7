"""Google Calendar's discovery excerpt as JSON Schema, for the calendar tests' fake.

The calendar tests answer googleapiclient with its own `HttpMockSequence`, so there is no
OpenAPI operation for `tests/contracts/validator.py` to match. `CalendarContract` does the
same job from the discovery document: it finds the method for each request Lens sends
(URL and HTTP method), checks its path and query parameters and its JSON body against the
method's `request` schema, and checks every answer the test feeds back against the
method's `response` schema (the parts of a batch answer included). A mismatch is recorded in
`tests.contracts.validator.VIOLATIONS` (which the autouse fixture in tests/conftest.py checks
after every test) and raised as `ContractViolation`.

Discovery schemas become JSON Schema 2020-12 like this: `$ref` names a schema by id
(`#/$defs/<id>`), `type`, `properties`, `items`, `additionalProperties` and `enum` keep their
meaning, `type: any` allows anything, `format` is checked for `date-time` (RFC 3339 with an
offset), `date`, `int32`, `uint32` and `int64` (a decimal string), and a property whose
`annotations.required` names the method is required in that method's request. Objects are
closed: a property the document does not list is a violation, because a fake answering a
field Google never sends, or Lens sending one Google does not define, is drift the tests
should see. The Gemini contract checks reuse `discovery_schema` (tests/contracts/gemini).

Error answers are not in the discovery document; they are checked against Google's JSON
error envelope as Calendar's "Handle API errors" guide shows it
(`{"error": {"errors": [{"domain", "reason", "message", ...}], "code", "message"}}`), with
`error.code` equal to the HTTP status.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft202012Validator, FormatChecker

from tests.contracts.validator import VIOLATIONS, ContractViolation

HERE = Path(__file__).parent

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"{value!r} is not yyyy-mm-dd")
        date.fromisoformat(value)
    return True


_INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}
_KEEP = ("description",)


def discovery_schema(
    node: dict[str, Any], *, known: set[str], method_id: str | None = None
) -> dict[str, Any]:
    """One discovery schema node as JSON Schema; refs point at `#/$defs/<id>`."""
    if "$ref" in node:
        name = node["$ref"]
        # A reference the vendor's own document leaves undefined (Gemini's
        # MediaResolution) allows anything, as tests/contracts/README.md says.
        return {"$ref": f"#/$defs/{name}"} if name in known else {}
    kind = node.get("type")
    out: dict[str, Any] = {}
    if kind == "any" or kind is None:
        pass
    elif kind == "string" and node.get("format") in ("int64", "uint64"):
        out["type"] = "string"
        out["pattern"] = r"^-?\d+$"
    else:
        out["type"] = kind
    fmt = node.get("format")
    if kind == "integer" and fmt in _INTEGER_RANGES:
        out["minimum"], out["maximum"] = _INTEGER_RANGES[fmt]
    elif kind == "string" and fmt in ("date-time", "date"):
        out["format"] = fmt
    if "minimum" in node and kind == "integer":
        out["minimum"] = int(node["minimum"])
    if "enum" in node:
        out["enum"] = list(node["enum"])
    if "items" in node:
        out["items"] = discovery_schema(node["items"], known=known, method_id=method_id)
    if "properties" in node:
        out["properties"] = {
            name: discovery_schema(value, known=known, method_id=method_id)
            for name, value in node["properties"].items()
        }
        required = [
            name
            for name, value in node["properties"].items()
            if method_id and method_id in value.get("annotations", {}).get("required", [])
        ]
        if required:
            out["required"] = required
    if "additionalProperties" in node:
        out["additionalProperties"] = discovery_schema(
            node["additionalProperties"], known=known, method_id=method_id
        )
    elif "properties" in node:
        out["additionalProperties"] = False
    return out


def discovery_validator(
    document: dict[str, Any], root: dict[str, Any], *, method_id: str | None = None
) -> Draft202012Validator:
    """A validator for `root` (e.g. `{"$ref": "Event"}`) with every schema of `document`."""
    known = set(document["schemas"])
    schema = discovery_schema(root, known=known, method_id=method_id)
    schema["$defs"] = {
        name: discovery_schema(value, known=known, method_id=method_id)
        for name, value in document["schemas"].items()
    }
    return Draft202012Validator(schema, format_checker=FORMATS)


# Google's JSON error envelope (not part of the discovery document).
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["domain", "reason", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "domain": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                            "location": {"type": "string"},
                            "locationType": {"type": "string"},
                            "extendedHelp": {"type": "string"},
                            "sendReport": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    path: str
    spec: dict[str, Any]
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Checked:
    """What a request turned out to be: one method call, or a batch of them."""

    method: Method | None  # None for a batch request
    batch: tuple[tuple[str, Method], ...] = ()  # (Content-ID, method) of each part


class CalendarContract:
    name = "google_calendar"

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.root = document["rootUrl"] + document["servicePath"]
        self.batch_url = document["rootUrl"] + document["batchPath"]
        self.methods: list[Method] = []
        for resource in document["resources"].values():
            for spec in resource["methods"].values():
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(spec["path"]))
                self.methods.append(
                    Method(
                        spec["id"],
                        spec["httpMethod"],
                        spec["path"],
                        spec,
                        re.compile(f"^{regex}$"),
                    )
                )

    @classmethod
    @cache
    def load(cls) -> CalendarContract:
        return cls(json.loads((HERE / "discovery.excerpt.json").read_text(encoding="utf-8")))

    # -- requests --------------------------------------------------------------------

    def check_request(
        self, uri: str, method: str, body: Any, headers: dict[str, str] | None
    ) -> Checked:
        url = urlsplit(uri)
        base = f"{url.scheme}://{url.netloc}{url.path}"
        if base == self.batch_url:
            if method != "POST":
                self._fail(f"{method} {base}", "the batch endpoint takes POST")
            return self._check_batch(body, headers or {})
        if not base.startswith(self.root):
            self._fail(f"{method} {base}", f"not under {self.root}")
        found = self._method(method, base[len(self.root) :])
        self._check_query(found, url.query)
        self._check_body(found, body, headers or {})
        return Checked(found)

    def _method(self, http_method: str, path: str) -> Method:
        for candidate in self.methods:
            if candidate.http_method == http_method and candidate.pattern.match(path):
                return candidate
        self._fail(f"{http_method} {path}", "no such method in the discovery document")
        raise AssertionError  # unreachable

    def _check_query(self, method: Method, query: str) -> None:
        documented = {
            name: spec
            for name, spec in {**self.document["parameters"], **method.spec["parameters"]}.items()
            if spec["location"] == "query"
        }
        for name, value in parse_qsl(query, keep_blank_values=True):
            spec = documented.get(name)
            what = f"{method.id} query parameter {name}={value!r}"
            if spec is None:
                self._fail(what, "not a documented parameter")
                continue
            kind = spec.get("type")
            if "enum" in spec and value not in spec["enum"]:
                self._fail(what, f"not one of {spec['enum']}")
            elif kind == "boolean" and value not in ("true", "false"):
                self._fail(what, "not a boolean")
            elif kind == "integer" and not re.fullmatch(r"-?\d+", value):
                self._fail(what, "not an integer")
            elif kind == "integer" and "minimum" in spec and int(value) < int(spec["minimum"]):
                self._fail(what, f"below the minimum {spec['minimum']}")

    def _check_body(self, method: Method, body: Any, headers: dict[str, str]) -> None:
        what = f"{method.id} request body"
        request = method.spec.get("request")
        if not body:
            if request and method.http_method in ("POST", "PUT"):
                self._fail(what, "the method takes a body and none was sent")
            return
        if request is None:
            self._fail(what, "the method takes no body")
        kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if not kind.startswith("application/json"):
            self._fail(what, f"sent as {kind!r}, not application/json")
        validator = discovery_validator(self.document, request, method_id=method.id)
        self._validate(validator, json.loads(body), what)

    def _check_batch(self, body: Any, headers: dict[str, str]) -> Checked:
        kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        parts = _multipart(kind, body)
        checked: list[tuple[str, Method]] = []
        for part in parts:
            content_id = str(part["Content-ID"] or "").strip("<>")
            inner = part.get_payload()
            head, _, inner_body = inner.replace("\r\n", "\n").partition("\n\n")
            request_line, *header_lines = head.split("\n")
            verb, target, _version = request_line.split(" ")
            inner_headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
            uri = self.document["rootUrl"].rstrip("/") + target
            single = self.check_request(uri, verb, inner_body.strip() or None, inner_headers)
            assert single.method is not None
            checked.append((content_id, single.method))
        return Checked(None, tuple(checked))

    # -- answers ---------------------------------------------------------------------

    def check_response(self, checked: Checked, status: int, headers: Any, content: Any) -> None:
        if checked.method is None:
            self._check_batch_answer(checked, status, headers, content)
            return
        self._check_answer(checked.method, status, _text(content))

    def _check_answer(self, method: Method, status: int, content: str) -> None:
        what = f"{method.id} answer {status}"
        if status >= 400:
            try:
                body = json.loads(content)
            except ValueError:
                self._fail(what, "an error answer that is not Google's JSON error envelope")
                return
            self._validate(Draft202012Validator(ERROR_ENVELOPE), body, what)
            if body["error"]["code"] != status:
                self._fail(what, f"error.code {body['error']['code']} is not the status")
            return
        response = method.spec.get("response")
        if response is None:
            # events.delete answers 204 No Content.
            if status != 204 or content.strip():
                self._fail(what, "the method answers 204 with no body")
            return
        if status != 200:
            self._fail(what, "the method answers 200 with its resource")
        self._validate(discovery_validator(self.document, response), json.loads(content), what)

    def _check_batch_answer(
        self, checked: Checked, status: int, headers: Any, content: Any
    ) -> None:
        what = f"batch answer {status}"
        if status >= 400:
            # The batch request itself failed (no parts): Google's error envelope.
            self._validate(Draft202012Validator(ERROR_ENVELOPE), json.loads(_text(content)), what)
            return
        kind = headers.get("content-type", "")
        answered: dict[str, Method] = {}
        for part in _multipart(kind, _text(content)):
            content_id = str(part["Content-ID"] or "").strip("<>")
            request_id = content_id.removeprefix("response-")
            method = dict(checked.batch).get(request_id)
            if method is None or not content_id.startswith("response-"):
                self._fail(what, f"a part {content_id!r} that answers no request")
                continue
            answered[request_id] = method
            head, _, inner_body = part.get_payload().replace("\r\n", "\n").partition("\n\n")
            inner_status = int(head.split("\n", 1)[0].split(" ")[1])
            self._check_answer(method, inner_status, inner_body.strip())
        missing = [cid for cid, _ in checked.batch if cid not in answered]
        if missing:
            self._fail(what, f"no part answers {missing}")

    # -- plumbing --------------------------------------------------------------------

    def _validate(self, validator: Draft202012Validator, value: Any, what: str) -> None:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            place = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
            self._fail(what, f"at {place}: {errors[0].message[:300]}")

    def _fail(self, what: str, detail: str) -> None:
        message = f"{self.name} contract: {what}: {detail}"
        VIOLATIONS.append(message)
        raise ContractViolation(message)


def _text(content: Any) -> str:
    return content.decode("utf-8") if isinstance(content, bytes) else str(content or "")


def _multipart(content_type: str, body: Any) -> list[Any]:
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(
        f"Content-Type: {content_type}\r\n\r\n{_text(body)}"
    )
    payload = message.get_payload()
    return list(payload) if isinstance(payload, list) else []

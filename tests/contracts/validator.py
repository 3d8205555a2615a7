"""Every fake checked against the vendor's own API description.

A fake that is wrong hides a real failure, so each fake vendor routes what it receives
and what it answers through a `Contract` made from the vendor's OpenAPI excerpt in this
folder: the operation must exist for that method and path, its query parameters and
JSON body must fit the documented schema, and the answer's status must be documented
with a body that fits its schema. A mismatch raises `ContractViolation` inside the
transport (so the call under test fails) and is also recorded in `VIOLATIONS`, which an
autouse fixture (tests/conftest.py) checks after every test, in case the code under test
swallowed the exception.

    contract = Contract.load("discord")
    transport = httpx.MockTransport(contract.checked(fake.handle))
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).parent
VIOLATIONS: list[str] = []


class ContractViolation(AssertionError):
    """A fake received or answered something the vendor's description does not allow."""


def _normalize(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema, and empty `oneOf` lists (a defect of
    one published spec) left out, so every schema is plain JSON Schema 2020-12."""
    if isinstance(node, list):
        return [_normalize(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _normalize(v) for k, v in node.items() if not (k == "oneOf" and v == [])}
    if out.pop("nullable", False):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    pattern: re.Pattern[str]
    literal: int  # segments without a parameter: more literal templates match first


@dataclass
class Contract:
    name: str
    spec: dict[str, Any]
    prefix: str  # the path every server URL puts before the documented paths
    operations: list[Operation] = field(default_factory=list)
    registry: Registry = field(default_factory=Registry)

    @classmethod
    @cache
    def load(cls, name: str) -> Contract:
        raw = json.loads((HERE / name / "openapi.excerpt.json").read_text())
        spec = _normalize(raw)
        prefix = urlsplit(spec.get("servers", [{"url": ""}])[0]["url"]).path.rstrip("/")
        contract = cls(name, spec, prefix)
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        contract.registry = Registry().with_resource(contract._uri, resource)
        for template, item in spec.get("paths", {}).items():
            regex = re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template))
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete", "head"):
                    contract.operations.append(
                        Operation(
                            template,
                            method.upper(),
                            operation,
                            re.compile(f"^{regex}$"),
                            literal,
                        )
                    )
        contract.operations.sort(key=lambda o: -o.literal)
        return contract

    # -- checking ------------------------------------------------------------------------

    @property
    def _uri(self) -> str:
        return f"urn:lens:contract:{self.name}"

    def _validate(self, value: Any, *where: str, what: str) -> None:
        schema = {"$ref": f"{self._uri}#/{_pointer(*where)}"}
        validator = Draft202012Validator(schema, registry=self.registry)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            self._fail(what, errors[0])

    def _fail(self, what: str, error: ValidationError | str) -> None:
        if isinstance(error, ValidationError):
            place = "/".join(str(p) for p in error.absolute_path) or "(top)"
            detail = f"at {place}: {error.message[:300]}"
        else:
            detail = error
        message = f"{self.name} contract: {what}: {detail}"
        VIOLATIONS.append(message)
        raise ContractViolation(message)

    def operation(self, method: str, path: str) -> Operation:
        path = path.removeprefix(self.prefix) or "/"
        for operation in self.operations:
            if operation.method == method and operation.pattern.match(path):
                return operation
        self._fail(f"{method} {path}", "no such operation in the vendor's description")
        raise AssertionError  # unreachable: _fail raises

    def check_request(self, request: httpx.Request) -> Operation:
        operation = self.operation(request.method, request.url.path)
        what = f"{request.method} {operation.template} request"
        params = {p["name"]: p for p in operation.spec.get("parameters", []) if p["in"] == "query"}
        for name, value in parse_qsl(request.url.query.decode(), keep_blank_values=True):
            param = params.get(name)
            if param is None:
                self._fail(what, f"query parameter {name!r} is not documented")
                continue
            schema = param.get("schema", {})
            self._check_scalar(_coerce(value, schema), schema, f"{what} query {name}")
        body = operation.spec.get("requestBody")
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if request.content and kind == "application/json":
            content = (body or {}).get("content", {})
            if "application/json" not in content:
                self._fail(what, "a JSON body where the operation takes none")
            self._validate(
                json.loads(request.content),
                "paths",
                operation.template,
                operation.method.lower(),
                "requestBody",
                "content",
                "application/json",
                "schema",
                what=what,
            )
        elif body and body.get("required") and not request.content:
            self._fail(what, "the operation requires a body")
        return operation

    def check_response(self, operation: Operation, response: httpx.Response) -> None:
        responses = operation.spec.get("responses", {})
        status = str(response.status_code)
        key = next(
            (k for k in (status, f"{status[0]}XX", "default") if k in responses),
            None,
        )
        what = f"{operation.method} {operation.template} answer {status}"
        if key is None:
            self._fail(what, f"status {status} is not documented (documented: {sorted(responses)})")
            return
        content = responses[key].get("content", {})
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip()
        if "application/json" in content and kind == "application/json":
            response.read()
            self._validate(
                json.loads(response.content) if response.content else None,
                "paths",
                operation.template,
                operation.method.lower(),
                "responses",
                key,
                "content",
                "application/json",
                "schema",
                what=what,
            )
        elif (
            content
            and response.content
            and kind
            and not any(_media_matches(kind, documented) for documented in content)
        ):
            self._fail(what, f"content type {kind!r} is not documented ({sorted(content)})")

    def _check_scalar(self, value: Any, schema: dict[str, Any], what: str) -> None:
        errors = list(Draft202012Validator(schema, registry=self.registry).iter_errors(value))
        if errors:
            self._fail(what, errors[0])

    def checked(
        self, handler: Callable[[httpx.Request], httpx.Response]
    ) -> Callable[[httpx.Request], httpx.Response]:
        """A MockTransport handler that checks what the fake receives and answers."""

        def check(request: httpx.Request) -> httpx.Response:
            operation = self.check_request(request)
            response = handler(request)
            self.check_response(operation, response)
            return response

        return check


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            return value
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


def _media_matches(kind: str, documented: str) -> bool:
    if documented in ("*/*", kind):
        return True
    major, _, minor = documented.partition("/")
    return minor == "*" and kind.startswith(major + "/")

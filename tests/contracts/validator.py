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

What a description names by `$ref` (parameters, request bodies, answers, and the schemas
inside them) is followed; a path parameter marked `x-multi-segment` (GitHub's
`contents/{path}`) spans several segments; path and query parameters are checked against
their schemas. Answers a vendor documents outside its OpenAPI file (rate limits, outages)
are accepted only through `checked(handler, outside={status: check})`, where the check
holds the vendor's documented facts. An answer whose body is still streaming is checked
by status and media type only.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
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
        _inline_operation_refs(spec)
        prefix = urlsplit(spec.get("servers", [{"url": ""}])[0]["url"]).path.rstrip("/")
        contract = cls(name, spec, prefix)
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        contract.registry = Registry().with_resource(contract._uri, resource)
        for template, item in spec.get("paths", {}).items():
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete", "head"):
                    multi = {
                        p["name"]
                        for p in operation.get("parameters", [])
                        if p.get("in") == "path" and p.get("x-multi-segment")
                    }
                    contract.operations.append(
                        Operation(
                            template,
                            method.upper(),
                            operation,
                            _path_regex(template, multi),
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

    def check_schema(self, value: Any, schema: str, what: str) -> None:
        """`value` must fit `#/components/schemas/<schema>`: for shapes that travel outside
        a documented operation (stream chunks, webhook payloads, error bodies)."""
        self._validate(value, "components", "schemas", schema, what=what)

    def check_at(self, value: Any, *where: str, what: str) -> None:
        """`value` must fit the schema at `where` (path parts into the description)."""
        self._validate(value, *where, what=what)

    def fail(self, what: str, detail: str) -> None:
        """Record a violation found by a check outside the description, and raise it."""
        self._fail(what, detail)

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
        found = operation.pattern.match(request.url.path.removeprefix(self.prefix) or "/")
        for param in operation.spec.get("parameters", []):
            if param.get("in") == "path" and found is not None:
                value = found.group(_group(param["name"]))
                schema = param.get("schema", {})
                self._check_scalar(
                    _coerce(value, schema),
                    schema,
                    f"{what} path parameter {param['name']}={value!r}",
                )
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
        json_answer = "application/json" in content and kind == "application/json"
        if (
            not _is_read(response)
            and json_answer
            and isinstance(response.stream, httpx.SyncByteStream)
        ):
            response.read()
        if not _is_read(response):
            # Still streaming (a tarball, a server-sent stream): the body is the code's
            # to read; status and media type are what can be checked now.
            if content and kind and not any(_media_matches(kind, d) for d in content):
                self._fail(what, f"content type {kind!r} is not documented ({sorted(content)})")
            return
        if json_answer:
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
        rooted = _rooted(schema, self._uri)
        errors = list(Draft202012Validator(rooted, registry=self.registry).iter_errors(value))
        if errors:
            self._fail(what, errors[0])

    def documents(self, operation: Operation, status: int) -> bool:
        responses = operation.spec.get("responses", {})
        text = str(status)
        return any(k in responses for k in (text, f"{text[0]}XX", "default"))

    def checked(
        self,
        handler: Callable[[httpx.Request], httpx.Response],
        *,
        outside: Mapping[int, OutsideCheck] | None = None,
    ) -> Callable[[httpx.Request], httpx.Response]:
        """A MockTransport handler that checks what the fake receives and answers.

        `outside` maps a status the vendor documents outside its OpenAPI file (a rate
        limit, an outage) to the check of such an answer: `check(response, what)`, which
        calls `contract.fail` when the answer breaks the vendor's documented facts. It
        applies only where the operation itself does not list the status."""

        def check(request: httpx.Request) -> httpx.Response:
            operation = self.check_request(request)
            response = handler(request)
            status = response.status_code
            if outside and status in outside and not self.documents(operation, status):
                if _is_read(response) or isinstance(response.stream, httpx.SyncByteStream):
                    response.read()
                outside[status](
                    response, f"{operation.method} {operation.template} answer {status}"
                )
            else:
                self.check_response(operation, response)
            return response

        return check


OutsideCheck = Callable[[httpx.Response, str], None]


def _inline_operation_refs(spec: dict[str, Any]) -> None:
    """Each operation's parameters (its own and its path's), request body and answers as
    objects rather than `$ref`s to `#/components/...`, so they can be read and pointed
    into. Schemas inside them keep their `$ref`s: the registry follows those."""

    def target(node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 10:
            found: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                found = found[part.replace("~1", "/").replace("~0", "~")]
            node, seen = found, seen + 1
        return copy.deepcopy(node)

    for item in spec.get("paths", {}).values():
        shared = [target(p) for p in item.get("parameters", [])]
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            own = [target(p) for p in operation.get("parameters", [])]
            names = {(p.get("name"), p.get("in")) for p in own}
            merged = own + [p for p in shared if (p.get("name"), p.get("in")) not in names]
            if merged:
                operation["parameters"] = merged
            if "requestBody" in operation:
                operation["requestBody"] = target(operation["requestBody"])
            answers = operation.get("responses", {})
            for status in list(answers):
                answers[status] = target(answers[status])


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _path_regex(template: str, multi: set[str]) -> re.Pattern[str]:
    pattern = ""
    for piece in re.split(r"(\{[^/]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            group = _group(name)
            if f"(?P<{group}>" in pattern:  # the same name twice: match, do not capture
                pattern += ".+" if name in multi else "[^/]+"
            else:
                pattern += f"(?P<{group}>.+)" if name in multi else f"(?P<{group}>[^/]+)"
        else:
            pattern += re.escape(piece)
    return re.compile(f"^{pattern}$")


def _rooted(schema: Any, uri: str) -> Any:
    """A schema cut out of the description, its local `$ref`s pointed at the description."""
    if isinstance(schema, list):
        return [_rooted(item, uri) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _rooted(v, uri) for k, v in schema.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = uri + ref
    return out


def _is_read(response: httpx.Response) -> bool:
    try:
        response.content  # noqa: B018 - raises ResponseNotRead while still streaming
    except httpx.ResponseNotRead:
        return False
    return True


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

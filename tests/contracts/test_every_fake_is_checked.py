"""Every fake vendor goes through the vendor's contract (issue 16), and the checks catch a
fake that drifts: (a) a static look at tests/ and bench/, so that a new fake cannot skip the
check unnoticed; (b) for each vendor, a wrong answer and a wrong request, each refused
through the same checked path the real fakes use."""

from __future__ import annotations

import ast
import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.content import fake_github
from tests.contracts import chat_checks
from tests.contracts.discord import checks as discord
from tests.contracts.validator import VIOLATIONS, ContractViolation
from tests.fixtures import fake_discord
from tests.integrations import fake_openai, fake_sendgrid, fake_transcription
from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.fake_transcription import FakeTranscriptionAPI

ROOT = Path(__file__).resolve().parents[2]

# -- (a) the static check ------------------------------------------------------------------

# What a fake's handler calls to be checked (tests/contracts/README.md lists where they live).
WRAPPERS = {"checked"}  # checks the request and the answer of the handler it wraps
REQUEST_CHECKS = {"check_request", "check_token_request", "check_fields"}
ANSWER_CHECKS = {
    "check_response",
    "check_answer",
    "check_schema",
    "check_at",
    "check_token_response",
    "check_rate_limited",
    "check_rate_limit",
    "check_stream",
    "check_openai_stream",
    "check_chunk",
    "check_error",
}
RESPONSES = {"Response", "JSONResponse", "PlainTextResponse", "StreamingResponse"}
# (file, the handler as written there) -> why it need not go through a contract.
ALLOWED = {
    ("tests/fixtures/db_proxy.py", "self._client"): (
        "a TCP proxy in front of the test PostgreSQL server (cut and restored to test an "
        "outage), not a vendor: it passes bytes through unchanged"
    ),
    ("tests/integrations/test_llm_http.py", "handler"): (
        "plain HTTP/1.1 servers under the vendor streams' HTTP client (answers framed by "
        "length, chunks or the connection's end, compressed, cut, not HTTP), not a vendor: "
        "they test the client's reading of HTTP; the vendors' answers are checked through "
        "the bench's fake, whose contract test is tests/contracts/test_bench_fake_llm.py"
    ),
    ("tests/integrations/test_llm_sockets.py", "handler"): (
        "plain TCP and TLS servers under the vendor streams' socket layer (echo, silence, "
        "close, a fixed HTTP answer), not a vendor: they test bytes, time limits and TLS"
    ),
    ("tests/web/test_body_limit.py", "_echo"): (
        "an app behind the body-limit middleware, not a vendor: it counts what it reads"
    ),
    ("tests/web/test_security_headers.py", "own"): (
        "an app behind the security-headers middleware, not a vendor: it sets its own policy"
    ),
    ("tests/bot/conftest.py", "_no_network"): (
        "refuses every request (AssertionError) so a bot test cannot reach a vendor by "
        "accident; it answers nothing a vendor would"
    ),
    ("tests/auth/test_discord.py", "broken"): (
        "answers on purpose what Discord never would (a user without an id) to pin how "
        "Lens fails on it; the request is still checked (checks.check_request) and the "
        "token exchange goes through checks.checked"
    ),
    ("tests/integrations/test_sentry.py", "Handler.do_POST"): (
        "Sentry's ingest endpoint: sentry-sdk, not Lens, builds what it receives, and "
        "tests/contracts has no description of it (sentry/FACTS.md covers `init`'s options); "
        "it answers the bare 200 the SDK ignores"
    ),
    ("bench/_fake_llm.py", "provider.handle"): (
        "the bench's own provider process: a check would cost time inside the measurement; "
        "tests/contracts/test_bench_fake_llm.py sends every kind of answer it gives through "
        "chat_checks.checked"
    ),
    ("tests/contracts/test_bench_fake_llm.py", "provider.handle"): (
        "runs bench/_fake_llm.py so that its answers are checked, client side, through "
        "chat_checks.checked"
    ),
}
HOW = (
    "route it through the vendor's contract: wrap the handler, "
    "`httpx.MockTransport(Contract.load('<vendor>').checked(handler, outside=...))` "
    "(tests/contracts/validator.py) or the vendor's wrapper (tests/contracts/discord/checks.py "
    "`checked`, tests/content/github_contract.py `checked`, FakeSendGrid().transport(), "
    "tests/contracts/chat_checks.py `checked` for chat servers, CalendarContract for "
    "googleapiclient mocks); a server's handler calls the request and answer checks. If it "
    "is no vendor fake, add it to ALLOWED in tests/contracts/test_every_fake_is_checked.py "
    "with the reason"
)

Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass
class Module:
    rel: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)

    def __post_init__(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)

    def top(self, name: str) -> ast.AST | None:
        for node in self.tree.body:
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and node.name == name
            ):
                return node
        return None

    def enclosing(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node


@dataclass(frozen=True)
class Finding:
    rel: str
    line: int
    kind: str  # "MockTransport", "HTTP server handler", ...
    handler: str

    def __str__(self) -> str:
        return f"{self.rel}:{self.line}: {self.kind} `{self.handler}` is not checked: {HOW}"


class Index:
    """The Python files of tests/ and bench/ (and, for the checker's own tests, made-up
    ones), with just enough name resolution to follow a handler to its checks."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.modules = {rel: Module(rel, ast.parse(text)) for rel, text in sources.items()}

    @classmethod
    def of_the_repository(cls) -> Index:
        files = [*sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "bench").rglob("*.py"))]
        return cls({str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in files})

    def module_named(self, dotted: str) -> Module | None:
        base = dotted.replace(".", "/")
        return self.modules.get(base + ".py") or self.modules.get(base + "/__init__.py")

    # -- names -----------------------------------------------------------------------

    def definition(self, module: Module, name: str) -> tuple[Module, ast.AST] | None:
        """A module-level function or class `name` as seen from `module`."""
        found = module.top(name)
        if found is not None:
            return module, found
        if name in module.imports:
            source, original = module.imports[name]
            other = self.module_named(source)
            if other is not None and other.top(original) is not None:
                return other, other.top(original)  # type: ignore[return-value]
        return None

    def klass(self, module: Module, node: ast.expr | None) -> tuple[Module, ast.ClassDef] | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = ast.parse(node.value, mode="eval").body
        if isinstance(node, ast.Name):
            found = self.definition(module, node.id)
            if found and isinstance(found[1], ast.ClassDef):
                return found[0], found[1]
        return None

    def member(
        self, module: Module, cls: ast.ClassDef, name: str
    ) -> tuple[Module, Function] | str | None:
        """Method `name` of `cls` (or a base), or "wrapped" when the class sets the
        attribute to a wrapper's result (`self._api = checked(...)`)."""
        for node in cls.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return module, node
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and target.attr == name
                        and callee(module, node.value) in WRAPPERS
                    ):
                        return "wrapped"
        for base in cls.bases:
            found = self.klass(module, base)
            if found:
                inherited = self.member(found[0], found[1], name)
                if inherited is not None:
                    return inherited
        return None

    def class_of(
        self, module: Module, at: ast.AST, name: str
    ) -> tuple[Module, ast.ClassDef] | None:
        """The class of variable `name` where `at` uses it: `self`, an annotated
        parameter, or `name = Class(...)` / `with Class(...) as name` around it."""
        for scope in module.enclosing(at):
            if name == "self" and isinstance(scope, ast.ClassDef):
                return module, scope
            if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                for arg in [*scope.args.args, *scope.args.kwonlyargs]:
                    if arg.arg == name and arg.annotation is not None:
                        return self.klass(module, arg.annotation)
            if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
                for node in ast.walk(scope):
                    value = None
                    if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == name for t in node.targets
                    ):
                        value = node.value
                    elif isinstance(node, ast.withitem) and (
                        isinstance(node.optional_vars, ast.Name) and node.optional_vars.id == name
                    ):
                        value = node.context_expr
                    if isinstance(value, ast.Call):
                        found = self.klass(module, value.func)
                        if found:
                            return found
        return None

    def local_function(
        self, module: Module, at: ast.AST, name: str
    ) -> tuple[Module, Function] | None:
        for scope in module.enclosing(at):
            if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(scope):
                    if (
                        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                        and node.name == name
                    ):
                        return module, node
        found = self.definition(module, name)
        if found and isinstance(found[1], ast.FunctionDef | ast.AsyncFunctionDef):
            return found[0], found[1]
        return None

    def handlers(
        self, module: Module, expr: ast.expr
    ) -> list[tuple[Module, Function]] | str | None:
        """What `expr` (a handler as written) runs: functions, "wrapped", or None."""
        if isinstance(expr, ast.Lambda):
            return [(module, expr)]
        if isinstance(expr, ast.Call):
            if callee(module, expr) in WRAPPERS:
                return "wrapped"
            made = self.handlers(module, expr.func)  # a factory: `fake.handler()`
            if isinstance(made, list) and all("W" in self.kinds(m, f) for m, f in made):
                return "wrapped"
            return None
        if isinstance(expr, ast.Name):
            if expr.id == "self":
                found = self.class_of(module, expr, "self")
                call = found and self.member(found[0], found[1], "__call__")
                return [call] if isinstance(call, tuple) else call
            function = self.local_function(module, expr, expr.id)
            if function:
                return [function]
            found = self.class_of(module, expr, expr.id)  # an instance: its __call__
            call = found and self.member(found[0], found[1], "__call__")
            return [call] if isinstance(call, tuple) else call
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            found = self.class_of(module, expr, expr.value.id)
            if found:
                method = self.member(found[0], found[1], expr.attr)
                return [method] if isinstance(method, tuple) else method
            # The instance's class is unknown here: every class in sight with that method.
            candidates: list[tuple[Module, Function]] = []
            names = [n.name for n in module.tree.body if isinstance(n, ast.ClassDef)]
            for name in [*names, *module.imports]:
                cls = self.definition(module, name)
                if cls and isinstance(cls[1], ast.ClassDef):
                    method = self.member(cls[0], cls[1], expr.attr)
                    if isinstance(method, tuple):
                        candidates.append(method)
            return candidates or None
        return None

    # -- what a function checks ------------------------------------------------------

    def kinds(self, module: Module, function: Function, depth: int = 0) -> set[str]:
        """W (a wrapper), R (a request check), A (an answer check) that `function`
        calls, following the calls it makes into tests/ and bench/ a few levels deep."""
        found: set[str] = set()
        body = function.body if isinstance(function.body, list) else [function.body]
        for node in (n for part in body for n in ast.walk(part)):
            if not isinstance(node, ast.Call):
                continue
            name = callee(module, node)
            if name in WRAPPERS:
                found.add("W")
            elif name in REQUEST_CHECKS:
                found.add("R")
            elif name in ANSWER_CHECKS:
                found.add("A")
            elif depth < 4:
                for target in self.callees(module, node):
                    found |= self.kinds(*target, depth=depth + 1)
                if self.called_wrapped(module, node):
                    found.add("W")
        return found

    def callees(self, module: Module, call: ast.Call) -> list[tuple[Module, Function]]:
        func = call.func
        if isinstance(func, ast.Name):
            found = self.local_function(module, call, func.id)
            return [found] if found else []
        if _on_self(func):
            cls = self.class_of(module, call, "self")
            method = cls and self.member(cls[0], cls[1], func.attr)  # type: ignore[union-attr]
            return [method] if isinstance(method, tuple) else []
        return []

    def called_wrapped(self, module: Module, call: ast.Call) -> bool:
        if not _on_self(call.func):
            return False
        cls = self.class_of(module, call, "self")
        return bool(cls) and self.member(cls[0], cls[1], call.func.attr) == "wrapped"  # type: ignore[attr-defined, index]

    def own_answer_checks(self, module: Module, function: Function) -> tuple[bool, bool]:
        """(builds a response itself, checks an answer itself), nested functions aside:
        a response a handler builds must be checked there, not by a wrapper it calls
        on some other path."""
        builds = checks = False
        body = function.body if isinstance(function.body, list) else [function.body]
        stack: list[ast.AST] = list(body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(node, ast.Call):
                name = callee(module, node)
                builds = builds or name in RESPONSES
                if name in ANSWER_CHECKS:
                    checks = True
                elif name not in WRAPPERS:
                    checks = checks or any(
                        "A" in self.kinds(*target, depth=1) for target in self.callees(module, node)
                    )
            stack.extend(ast.iter_child_nodes(node))
        return builds, checks

    def is_checked(self, module: Module, expr: ast.expr | Function) -> bool:
        if isinstance(expr, ast.FunctionDef | ast.AsyncFunctionDef):
            resolved: list[tuple[Module, Function]] | str | None = [(module, expr)]
        else:
            resolved = self.handlers(module, expr)
        if resolved == "wrapped":
            return True
        if not resolved or isinstance(resolved, str):
            return False
        for target in resolved:
            kinds = self.kinds(*target)
            if "W" not in kinds and not {"R", "A"} <= kinds:
                return False
            builds, checks = self.own_answer_checks(*target)
            if builds and not checks:
                return False
        return True

    # -- the fakes ---------------------------------------------------------------------

    def fakes(self) -> Iterator[Fake]:
        """Every fake vendor in the files: what serves a MockTransport, a test server
        (http.server, asyncio, Starlette) or googleapiclient's HTTP mock."""
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                if isinstance(node, ast.Call):
                    name = callee(module, node)
                    handler = _argument(node, 0, "handler")
                    if name == "MockTransport" and handler is not None:
                        yield Fake(module, node.lineno, "httpx.MockTransport handler", handler)
                    elif name == "start_server" and handler is not None:
                        yield Fake(module, node.lineno, "asyncio server handler", handler)
                    elif name in ("Route", "WebSocketRoute"):
                        endpoint = _argument(node, 1, "endpoint")
                        if endpoint is not None:
                            yield Fake(module, node.lineno, "Starlette endpoint", endpoint)
                    elif name in ("HttpMock", "HttpMockSequence"):
                        # Only a subclass whose `request` checks (test_google_calendar.py).
                        yield Fake(module, node.lineno, "unchecked googleapiclient mock", None)
                elif isinstance(node, ast.ClassDef):
                    bases = {_base_name(b) for b in node.bases}
                    served = {
                        "BaseHTTPRequestHandler": ("HTTP server handler", "do_"),
                        "HttpMockSequence": ("googleapiclient mock", "request"),
                        "HttpMock": ("googleapiclient mock", "request"),
                    }
                    for base, (kind, prefix) in served.items():
                        if base not in bases:
                            continue
                        for method in node.body:
                            if isinstance(
                                method, ast.FunctionDef | ast.AsyncFunctionDef
                            ) and method.name.startswith(prefix):
                                yield Fake(module, method.lineno, kind, method, node.name)

    def findings(self, allowed: dict[tuple[str, str], str] | None = None) -> list[Finding]:
        out = []
        for fake in self.fakes():
            if (fake.module.rel, fake.text) in (allowed or {}):
                continue
            if fake.handler is None or not self.is_checked(fake.module, fake.handler):
                out.append(Finding(fake.module.rel, fake.line, fake.kind, fake.text))
        return out


@dataclass
class Fake:
    module: Module
    line: int
    kind: str
    handler: ast.expr | ast.FunctionDef | ast.AsyncFunctionDef | None
    owner: str = ""  # the class of a server's handler method

    @property
    def text(self) -> str:
        if isinstance(self.handler, ast.FunctionDef | ast.AsyncFunctionDef):
            return f"{self.owner}.{self.handler.name}"
        return ast.unparse(self.handler) if self.handler is not None else "HttpMockSequence"


def callee(module: Module, call: ast.Call) -> str:
    """The name a call calls, through `import ... as` renames."""
    func = call.func
    if isinstance(func, ast.Name):
        return module.imports.get(func.id, ("", func.id))[1]
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _on_self(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "self"
    )


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


@pytest.fixture(scope="module")
def repository() -> Index:
    return Index.of_the_repository()


def test_every_fake_vendor_goes_through_its_contract(repository: Index) -> None:
    found = repository.findings(ALLOWED)
    assert not found, "fakes that skip the vendor's contract:\n" + "\n".join(map(str, found))


def test_every_exception_is_still_there(repository: Index) -> None:
    seen = {(fake.module.rel, fake.text) for fake in repository.fakes()}
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"ALLOWED names handlers that are no longer there: {stale}"


SYNTHETIC = {
    "tests/fake_vendor.py": """
import httpx
from http.server import BaseHTTPRequestHandler
from tests.contracts.validator import Contract

CONTRACT = Contract.load("sendgrid")


def answer(request):
    return httpx.Response(202)


class Fake:
    def __init__(self):
        self._api = CONTRACT.checked(answer)

    def handle(self, request):
        return self._api(request)

    def unchecked(self, request):
        return answer(request)


class Server(BaseHTTPRequestHandler):
    def do_POST(self):
        CONTRACT.check_request(self.request_sent)
        CONTRACT.check_response(self.operation, self.response)

    def do_GET(self):
        self.wfile.write(b"{}")


def half_checked(request):
    CONTRACT.check_request(request)
    return httpx.Response(200, json={"no": "check"})


def transports(fake: Fake):
    other = Fake()
    return [
        httpx.MockTransport(answer),
        httpx.MockTransport(CONTRACT.checked(answer)),
        httpx.MockTransport(lambda request: httpx.Response(503)),
        httpx.MockTransport(fake.handle),
        httpx.MockTransport(other.unchecked),
        httpx.MockTransport(half_checked),
    ]
""",
}


def test_the_static_check_names_each_unchecked_fake_and_how_to_route_it() -> None:
    lines = SYNTHETIC["tests/fake_vendor.py"].splitlines()

    def line(text: str) -> int:
        return next(n for n, got in enumerate(lines, 1) if text in got)

    found = Index(SYNTHETIC).findings()
    assert {(f.line, f.handler) for f in found} == {
        (line("def do_GET"), "Server.do_GET"),
        (line("MockTransport(answer)"), "answer"),
        (line("MockTransport(lambda"), "lambda request: httpx.Response(503)"),
        (line("MockTransport(other.unchecked)"), "other.unchecked"),
        (line("MockTransport(half_checked)"), "half_checked"),
    }
    message = str(next(f for f in found if f.handler == "answer"))
    where = f"tests/fake_vendor.py:{line('MockTransport(answer)')}"
    assert message.startswith(f"{where}: httpx.MockTransport handler `answer` is not checked")
    assert "Contract.load('<vendor>').checked(handler" in message and "ALLOWED" in message


# -- (b) each vendor's checks refuse a wrong answer and a wrong request --------------------


def violates(check: Callable[[], Any], match: str) -> None:
    """`check` raises ContractViolation matching `match`; the violation it recorded is
    taken back, as it was meant (the autouse fixture fails a test on any left)."""
    with pytest.raises(ContractViolation, match=match) as caught:
        check()
    VIOLATIONS.remove(str(caught.value))


def violates_in_server(act: Callable[[], Any], match: str) -> None:
    """`act` talks to a fake server, whose check raises in the server's thread: the
    violation is found in VIOLATIONS (and taken back)."""
    with contextlib.suppress(httpx.HTTPError):  # the server's thread raised: dropped
        act()
    found = [v for v in VIOLATIONS if re.search(match, v)]
    assert len(found) == 1, (match, list(VIOLATIONS))
    VIOLATIONS.remove(found[0])


DISCORD = "https://discord.com/api/v10"
DISCORD_HEADERS = {
    "User-Agent": "DiscordBot (https://github.com/lens-academy/lens, 0.1)",
    "Authorization": f"Bot {fake_discord.TOKEN}",
}


def discord_answering(answer: httpx.Response) -> fake_discord.FakeGuild:
    fake = fake_discord.FakeGuild()
    fake._serve = lambda request: answer  # type: ignore[method-assign]
    return fake


def test_discord_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    member = fake_discord.member_object(fake_discord.user_object(fake_discord.OWNER_ID, "ada"))
    get = httpx.Request(
        "GET", f"{DISCORD}/guilds/{fake_discord.GUILD_ID}/members/{fake_discord.OWNER_ID}",
        headers=DISCORD_HEADERS,
    )  # fmt: skip
    without = {k: v for k, v in member.items() if k != "joined_at"}
    violates(
        lambda: discord_answering(httpx.Response(200, json=without)).handle(get),
        "answer 200: at \\(top\\): 'joined_at' is a required property",
    )
    violates(
        lambda: discord_answering(httpx.Response(200, json={**member, "roles": "none"})).handle(
            get
        ),
        "answer 200: at roles: 'none' is not of type 'array'",
    )
    violates(
        lambda: discord_answering(httpx.Response(302)).handle(get),
        "status 302 is not documented",
    )
    patch = httpx.Request(
        "PATCH", get.url, json={"nick": 5}, headers={**DISCORD_HEADERS, "X-Audit-Log-Reason": "r"}
    )
    violates(lambda: fake_discord.FakeGuild().handle(patch), "PATCH .* request: at nick")
    # Discord's own checks beyond the description: ids are snowflakes, the bot's token.
    bad_id = httpx.Request("GET", f"{DISCORD}/guilds/guild1/channels", headers=DISCORD_HEADERS)
    violates(lambda: fake_discord.FakeGuild().handle(bad_id), "path parameter guild_id")
    violates(
        lambda: discord.checked(fake_discord.FakeGuild().handle)(
            httpx.Request(
                "GET", f"{DISCORD}/users/@me", headers=DISCORD_HEADERS | {"Authorization": "t"}
            )
        ),
        "Authorization must be one of",
    )


GITHUB = f"https://api.github.com/repos/{fake_github.OWNER_REPO}"
GITHUB_HEADERS = {
    "X-GitHub-Api-Version": "2022-11-28",
    "Authorization": "Bearer ghp_testtoken",
    "Accept": "application/vnd.github+json",
}


def test_github_refuses_a_wrong_answer_and_a_wrong_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_github.FakeGitHub(fake_github.History(tmp_path / "repo"))
    compare = httpx.Request("GET", f"{GITHUB}/compare/a...b", headers=GITHUB_HEADERS)

    def answering(answer: httpx.Response) -> Callable[[], Any]:
        fake.fail_with = answer
        return lambda: fake.handle(compare)

    violates(
        answering(httpx.Response(200, json={"status": "ahead"})),
        "compare/{basehead} answer 200: at \\(top\\): '\\w+' is a required property",
    )
    violates(
        answering(httpx.Response(404, json={"message": 404})),
        "answer 404: at message: 404 is not of type 'string'",
    )
    violates(answering(httpx.Response(418, json={})), "status 418 is not documented")
    # A rate limit without any of the headers or the message GitHub's docs name.
    fake.fail_with = None
    monkeypatch.setattr(
        fake_github,
        "rate_limit_answer",
        lambda kind, **options: httpx.Response(403, json={"message": "Slow down."}),
    )
    fake.rate_limit("primary")
    violates(lambda: fake.handle(compare), "rate-limit answer 403: neither retry-after")
    wrong = httpx.Request("GET", f"{GITHUB}/compare/a...b?per_page=all", headers=GITHUB_HEADERS)
    violates(lambda: fake.handle(wrong), "query per_page: at \\(top\\): 'all' is not of type")


def test_sendgrid_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    mail = {
        "personalizations": [{"to": [{"email": "ada@example.org"}]}],
        "from": {"email": "team@lens.example.org"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hello"}],
    }
    send = httpx.Request(
        "POST", fake_sendgrid.URL, json=mail, headers={"Authorization": "Bearer SG.test-key"}
    )

    def answering(status: int, body: dict[str, Any] | None) -> Callable[[], Any]:
        return lambda: fake_sendgrid.FakeSendGrid(answers=[(status, body)]).handler()(send)

    violates(answering(400, {"errors": "bad"}), "answer 400: at errors: 'bad' is not of type")
    violates(
        answering(429, {"errors": [{"message": 429}]}),
        "answer 429: at errors/0/message: 429 is not of type 'string'",
    )
    # SendGrid's description has 500 as its only server error; 429 its docs add.
    violates(answering(503, None), "status 503 is not documented")
    unaddressed = {k: v for k, v in mail.items() if k != "personalizations"}
    violates(
        lambda: fake_sendgrid.FakeSendGrid().handler()(
            httpx.Request("POST", fake_sendgrid.URL, json=unaddressed, headers=send.headers)
        ),
        "request: at \\(top\\): 'personalizations' is a required property",
    )


CHAT = "https://api.openai.com/v1/chat/completions"
ASKED = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def sse(*events: Any, names: bool = False) -> httpx.Response:
    lines = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        name = f"event: {event['type']}\n" if names and isinstance(event, dict) else ""
        lines.append(f"{name}data: {data}\n\n")
    return httpx.Response(
        200, content="".join(lines).encode(), headers={"Content-Type": "text/event-stream"}
    )


def chunk(**fields: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
        "usage": None,
        **fields,
    }


def chat(vendor: str, answer: httpx.Response, request: httpx.Request) -> Callable[[], Any]:
    """The path the chat servers take (recorded_exchanges.ReplayServer, FakeOpenAI)."""
    return lambda: chat_checks.checked(vendor, lambda r: answer)(request)


def test_openai_chat_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    asked = httpx.Request("POST", CHAT, json=ASKED)
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    without_created = {k: v for k, v in chunk().items() if k != "created"}
    violates(
        chat("openai", sse(without_created, "[DONE]"), asked),
        "chunk: at \\(top\\): 'created' is a required property",
    )
    violates(
        chat("openai", sse(chunk(), chunk(usage=usage), "[DONE]"), asked),
        "the usage asked for comes on a last chunk with empty `choices`",
    )
    not_asked = httpx.Request("POST", CHAT, json={**ASKED, "stream_options": None})
    violates(
        chat("openai", sse(chunk(), chunk(choices=[], usage=usage), "[DONE]"), not_asked),
        "`usage` in a stream that did not ask for it",
    )
    error = {"message": "m", "type": "server_error", "param": None, "code": None}
    violates(
        chat("openai", httpx.Response(418, json={"error": error}), asked),
        "status 418 is documented neither",
    )
    violates(
        chat("openai", httpx.Response(429, json={"error": {**error, "message": 1}}), asked),
        "answer 429: at error/message: 1 is not of type 'string'",
    )
    unasked = httpx.Request("POST", CHAT, json={"model": "gpt-4o-mini", "max_tokens": "64"})
    violates(
        chat("openai", sse("[DONE]"), unasked),
        "request: at \\(top\\): 'messages' is a required property",
    )


def test_the_openai_chat_server_refuses_through_its_own_checks() -> None:
    openai = FakeOpenAI()
    try:
        openai.script.append(("error", (418, fake_openai.ERRORS[500])))
        violates_in_server(
            lambda: httpx.post(
                f"{openai.base}/chat/completions",
                json=ASKED,
                headers={"Authorization": "Bearer sk-test"},
                timeout=10,
            ),
            "answer 418: status 418 is documented neither",
        )
        violates_in_server(
            lambda: httpx.post(
                f"{openai.base}/chat/completions",
                json={**ASKED, "messages": "Hi"},
                headers={"Authorization": "Bearer sk-test"},
                timeout=10,
            ),
            "request: at messages: 'Hi' is not of type 'array'",
        )
    finally:
        openai.close()


def transcription(**fields: str) -> httpx.Request:
    request = httpx.Request(
        "POST",
        "https://api.openai.com/v1/audio/transcriptions",
        headers={"Authorization": "Bearer sk-test"},
        data=fields,
        files={"file": ("speech.webm", b"\x1aE\xdf\xa3", "audio/webm")},
    )
    request.read()
    return request


def test_openai_transcription_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    asked = transcription(model="gpt-4o-mini-transcribe", response_format="json")
    without_text = FakeTranscriptionAPI()
    without_text.plain = lambda model: {"usage": {"type": "duration", "seconds": 1}}  # type: ignore[method-assign]
    violates(lambda: without_text(asked), "answer \\(json\\): at \\(top\\): 'text' is a required")
    wrong_type = FakeTranscriptionAPI()
    wrong_type.plain = lambda model: {"text": 5}  # type: ignore[method-assign]
    violates(lambda: wrong_type(asked), "answer \\(json\\): at text: 5 is not of type 'string'")
    violates(
        lambda: FakeTranscriptionAPI(statuses=[(418, fake_transcription.ERRORS[400])])(asked),
        "answer 418: not a status OpenAI documents",
    )
    violates(
        lambda: FakeTranscriptionAPI()(transcription(response_format="json")),
        "request fields: at \\(top\\): 'model' is a required property",
    )


MESSAGES = "https://api.anthropic.com/v1/messages"
ANTHROPIC_ASKED = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
}


def test_anthropic_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    asked = httpx.Request("POST", MESSAGES, json=ANTHROPIC_ASKED)
    no_usage = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    violates(
        chat("anthropic", sse(no_usage, names=True), asked),
        "event message_delta: at \\(top\\)",
    )
    violates(
        chat("anthropic", sse({"type": "content_block_stop", "index": "0"}, names=True), asked),
        "event content_block_stop: at \\(top\\)",
    )
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}
    violates(
        chat("anthropic", httpx.Response(503, json=overloaded), asked),
        "status 503 is documented neither",
    )
    violates(
        chat(
            "anthropic",
            httpx.Response(529, json={"type": "error", "error": "overloaded", "request_id": "r"}),
            asked,
        ),
        "answer 529: at error: 'overloaded' is not valid under any of the given schemas",
    )
    unlimited = {k: v for k, v in ANTHROPIC_ASKED.items() if k != "max_tokens"}
    violates(
        chat("anthropic", sse(), httpx.Request("POST", MESSAGES, json=unlimited)),
        "request: at \\(top\\): 'max_tokens' is a required property",
    )


GEMINI = (
    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    ":streamGenerateContent?alt=sse"
)
GEMINI_ASKED = {
    "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
    "generationConfig": {"max_output_tokens": 64},
}


def test_gemini_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    asked = httpx.Request("POST", GEMINI, json=GEMINI_ASKED)
    text = {"content": {"role": "model", "parts": [{"text": "Hi"}]}}
    violates(
        chat("gemini", sse({"candidates": [text], "usage": {"promptTokenCount": 1}}), asked),
        "chunk: at \\(top\\): Additional properties are not allowed \\('usage'",
    )
    violates(
        chat("gemini", sse({"candidates": text}), asked),
        "chunk: at candidates: .* is not of type 'array'",
    )
    unavailable = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    violates(
        chat("gemini", httpx.Response(429, json=unavailable), asked),
        "error.code 503 is not the status",
    )
    violates(chat("gemini", httpx.Response(302, json={}), asked), "status 302 is not documented")
    violates(
        chat(
            "gemini", sse(), httpx.Request("POST", GEMINI, json={**GEMINI_ASKED, "max_tokens": 64})
        ),
        "Additional properties are not allowed \\('maxTokens'",
    )
    violates(
        chat(
            "gemini",
            sse(),
            httpx.Request("POST", GEMINI.replace("?alt=sse", "?alt=ndjson"), json=GEMINI_ASKED),
        ),
        "alt='ndjson' is neither documented",
    )


def test_google_calendar_refuses_a_wrong_answer_and_a_wrong_request() -> None:
    from tests.integrations.test_google_calendar import EVENTS_URL, OK, Google

    body = json.dumps({"start": {"dateTime": "2025-06-03T16:00:00Z"},
                       "end": {"dateTime": "2025-06-03T17:00:00Z"}})  # fmt: skip
    headers = {"content-type": "application/json"}

    def inserting(answer: tuple[dict[str, str], str]) -> Callable[[], Any]:
        return lambda: Google([answer]).request(EVENTS_URL, "POST", body, headers)

    event = {"kind": "calendar#event", "id": "lens1", "status": "confirmed"}
    violates(
        inserting((OK, json.dumps({**event, "summary": 5}))),
        "events.insert answer 200: at summary: 5 is not of type 'string'",
    )
    violates(
        inserting(({"status": "201"}, json.dumps(event))),
        "events.insert answer 201: the method answers 200",
    )
    violates(
        inserting(({"status": "404"}, json.dumps({"message": "Not Found"}))),
        "events.insert answer 404: at \\(top\\): 'error' is a required property",
    )
    violates(
        lambda: Google([(OK, json.dumps(event))]).request(
            EVENTS_URL, "POST", json.dumps({**json.loads(body), "attendees": "ada"}), headers
        ),
        "events.insert request body: at attendees",
    )

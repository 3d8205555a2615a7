"""The tutor's model gateway: one streaming interface over the vendors' APIs.

The vendors Lens names (`anthropic/…`, `openai/…` and any OpenAI-compatible server at
LENS_LLM_API_BASE, `gemini/…`) are spoken to directly (direct.py, over Lens's own HTTP
client in connections.py): cheap per
exchange, and every stream of a live session's burst reaches the vendor at once. Any
other `provider/model` string (Ollama, Mistral, Bedrock…) goes through litellm, imported
only when such a model is first used (the import takes seconds).

Around either, one policy (`PolicyModel.stream`): a first-token deadline over every try
and the fallback together, retries before the first token only, the fallback model for an
outage or an account problem, a stall limit and a whole-reply limit once it answers,
cancellation that closes the upstream request, and the price of the model that answered
(prices.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.llm import direct
from lens.integrations.llm.connections import (
    BadAddress,
    HttpxVendor,
    Response,
    Vendor,
    vendor_client,
)
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.integrations.llm.prices import Price, price_of
from lens.logging import get_logger

log = get_logger("lens.integrations.llm")


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    model: str | None = None  # the model that answered (the fallback, when it did)


Event = Delta | Usage


class SentAhead(Protocol):
    """A reply's request already sent (`ChatModel.send_ahead`), for `stream` to go on
    with."""

    async def aclose(self) -> None:
        """Let it go unread (the learner left before the reply began); idempotent."""
        ...


class ChatModel(Protocol):
    name: str

    def stream(
        self,
        *,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        ahead: SentAhead | None = None,
    ) -> AsyncIterator[Event]:
        """The reply's text, then its Usage. `ahead`: what `send_ahead` returned for
        this same request."""
        ...

    async def send_ahead(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> SentAhead | None:
        """Send the reply's request now, before the learner's response starts: with a
        whole cohort asking at once, every request is on its way to the vendor before
        Lens writes the first response head. None when the model has nothing to send
        ahead (`stream` sends it). Never fails: a failure is `stream`'s first try's."""
        ...

    def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        """The most a reply of this size can cost, whichever model answers it (USD)."""
        ...

    def prepare(self) -> None:
        """A reply will be asked for shortly: start what it needs (a connection to the
        vendor) now. Never fails; what goes wrong shows when the reply is asked for."""
        ...


class FirstTokenTimeout(IntegrationUnavailable):
    pass


class StoppedAnswering(IntegrationUnavailable):
    """The model went quiet mid-reply, or the reply ran past its time."""


Verdict = Literal["account", "retry", "fatal"]


class Opened(Protocol):
    """One reply being streamed by a vendor."""

    async def next_text(self) -> str:
        """The next piece of text; StopAsyncIteration when the reply is over."""
        ...

    def counts(self) -> tuple[int, int]:
        """(prompt tokens, completion tokens) as reported so far."""
        ...

    async def aclose(self) -> None: ...


class PolicyModel:
    """The policy around a vendor's stream; subclasses open the stream (`_open`) and
    judge a failure (`_judge`)."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        api_base: str | None = None,
        connect_timeout: float = 10.0,
        first_token_timeout: float = 20.0,
        stall_timeout: float = 30.0,
        reply_timeout: float = 180.0,
        retries: int = 2,
        fallback: str | None = None,
        prices: dict[str, Any] | None = None,
        pace: float = 0.05,
    ) -> None:
        """`first_token_timeout` bounds the wait for the first token over every try and
        the fallback together: the learner waits that long at most before an error.
        Once it answers, a gap of `stall_timeout` between chunks, or a whole reply longer
        than `reply_timeout`, ends it as stopped part-way (what came is kept).
        `prices`: the site's own prices (LENS_LLM_PRICES), see prices.py.
        `pace`: after the first piece, text is handed on at most this often (seconds)
        from a stream that reads everything that has arrived at once (`gathers`): what
        comes meanwhile goes on as one piece. A vendor sends a token every 10-30 ms; a
        reader cannot tell 50 ms apart, and a whole cohort's streams cost a third of
        the writes."""
        self.name = model
        self.api_key = api_key
        self.api_base = api_base
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.fallback = fallback
        self.prices = prices
        self.pace = pace
        self._warmed = False
        self._price_of: dict[str, Price] = {}

    async def warm(self) -> None:
        """Set up what the first request needs (subclasses), off the event loop."""

    def prepare(self) -> None:
        """ChatModel.prepare: nothing to do ahead here (subclasses)."""

    async def send_ahead(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> SentAhead | None:
        """ChatModel.send_ahead: nothing here (subclasses)."""
        return None

    async def _go_on(self, ahead: Any) -> Opened:
        """The stream of a request `send_ahead` sent (subclasses that send ahead)."""
        raise NotImplementedError

    def same_vendor(self, model: str) -> bool:
        """Whether `model` is the main model's vendor's: LENS_LLM_API_BASE and the main
        key apply to it (a fallback at another vendor uses that vendor's own)."""
        return model.partition("/")[0].lower() == self.name.partition("/")[0].lower()

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self._price_of.get(model)
        if price is None:  # looked up once per model: every ask's budget check needs it
            local = bool(self.api_base) and self.same_vendor(model)
            price = self._price_of[model] = price_of(model, local=local, overrides=self.prices)
        return price.cost(prompt_tokens, completion_tokens)

    def cost_ceiling(self, *, prompt_tokens: int, completion_tokens: int) -> float:
        return max(
            self.cost(model, prompt_tokens, completion_tokens)
            for model in (self.name, self.fallback)
            if model
        )

    async def _open(
        self, model: str, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Opened:
        raise NotImplementedError

    def _judge(self, exc: Exception) -> tuple[Verdict, Exception]:
        """Whether a failure is the account's ("account"), worth another try ("retry"),
        or final ("fatal"), and the exception to raise for it."""
        raise NotImplementedError

    async def stream(
        self,
        *,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        ahead: SentAhead | None = None,
    ) -> AsyncIterator[Event]:
        model = self.name
        attempt = 0
        fallback = self.fallback
        loop = asyncio.get_running_loop()
        if not self._warmed:
            # The app warms the model at start-up; a request that came first finishes
            # that here, before the first token's clock starts: it bounds the vendor's
            # wait, not Lens's own set-up (importing litellm takes seconds).
            await self.warm()
            self._warmed = True
        # The deadline counts from the request sent ahead, when there is one.
        deadline = getattr(ahead, "sent_at", loop.time()) + self.first_token_timeout
        opened: Opened | None = None
        while True:
            try:
                if deadline - loop.time() <= 0:
                    raise TimeoutError
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the awaited step completes, and the
                # learner's browser going away must always stop the upstream request.
                async with asyncio.timeout_at(deadline):
                    if ahead is not None:  # the first try, sent already
                        going, ahead = ahead, None
                        opened = await self._go_on(going)
                    else:
                        opened = await self._open(
                            model, system=system, messages=messages, max_tokens=max_tokens
                        )
                    try:
                        # Retrying is only safe before anything reached the student.
                        first: str | None = await opened.next_text()
                    except StopAsyncIteration:
                        first = None  # an empty reply: over at once
                break
            except TimeoutError as exc:
                await _close(opened)
                opened = None
                if loop.time() >= deadline:
                    raise FirstTokenTimeout("the model did not start answering in time") from exc
                if attempt >= self.retries:
                    if fallback:
                        model, fallback, attempt = fallback, None, 0
                        continue
                    raise FirstTokenTimeout("the model did not start answering in time") from exc
            except asyncio.CancelledError:
                await _close(opened)
                raise
            except Exception as exc:
                await _close(opened)
                opened = None
                verdict, error = self._judge(exc)
                if verdict == "account":
                    # Lens's account with this vendor (key, permissions, quota, billing):
                    # asking again will not help. The fallback may be another account.
                    if fallback:
                        log.error("llm.account_problem", model=model, error=str(error))
                        model, fallback, attempt = fallback, None, 0
                        continue
                    raise error from exc
                if verdict == "fatal" or attempt >= self.retries:
                    if fallback and verdict == "retry":
                        # The main model is down: the fallback gets its own tries.
                        model, fallback, attempt = fallback, None, 0
                        continue
                    raise error from exc
            attempt += 1
            await asyncio.sleep(min(4.0, 0.5 * 2**attempt))
        assert opened is not None
        ends = loop.time() + self.reply_timeout
        pace = self.pace if getattr(opened, "gathers", False) else 0.0
        try:
            text = first
            while text is not None:
                yield Delta(text)
                if pace:
                    await asyncio.sleep(pace)  # what arrives meanwhile goes on together
                try:
                    wait = min(self.stall_timeout, ends - loop.time())
                    if wait <= 0:
                        raise StoppedAnswering("the reply took longer than allowed")
                    async with asyncio.timeout(wait):
                        text = await opened.next_text()
                except StopAsyncIteration:
                    text = None
                except TimeoutError as exc:
                    if loop.time() >= ends:
                        raise StoppedAnswering("the reply took longer than allowed") from exc
                    raise StoppedAnswering("the model stopped answering part-way") from exc
        except (asyncio.CancelledError, GeneratorExit, StoppedAnswering):
            await _close(opened)  # the browser left, or the model stalled: stop upstream
            raise
        except Exception as exc:
            await _close(opened)
            raise self._judge(exc)[1] from exc
        await _close(opened)
        prompt_tokens, completion_tokens = opened.counts()
        # Priced as the model that answered: after a fallback, not the configured one.
        yield Usage(
            prompt_tokens,
            completion_tokens,
            self.cost(model, prompt_tokens, completion_tokens),
            model=model,
        )


_closing: set[asyncio.Task[None]] = set()


async def _close(opened: Opened | None) -> None:
    """Close the upstream stream: waited for up to a second (an SDK may wait for a read in
    flight to end), then left to finish in the background; never raises."""
    if opened is None:
        return
    task = asyncio.ensure_future(_quietly(opened.aclose()))
    _closing.add(task)
    task.add_done_callback(_closing.discard)
    await asyncio.wait({task}, timeout=1.0)


async def _quietly(closing: Any) -> None:
    try:
        await closing
    except Exception as exc:  # closing a broken stream may fail too; nothing to save
        log.debug("llm.close_failed", error=repr(exc))


# -- the vendors Lens names, directly -------------------------------------------------------


class DirectModel(PolicyModel):
    """Anthropic, OpenAI (and OpenAI-compatible servers) and Gemini directly
    (connections.py); any other model string (a fallback such as `ollama/llama3`) through
    litellm.

    `keys`: each vendor's API key ({"anthropic": …}); `api_key` is the main model's.
    `api_key` and LENS_LLM_API_BASE (`api_base`) apply to the main model's vendor."""

    def __init__(
        self,
        *,
        keys: dict[str, str | None] | None = None,
        http: Vendor | httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        """`http`: the client for the vendors (lens.integrations.llm.connections); an
        httpx client (a test's transport) is spoken to through `HttpxVendor`."""
        super().__init__(**kwargs)
        self.keys = dict(keys or {})
        self._http: Vendor | None = (
            HttpxVendor(http) if isinstance(http, httpx.AsyncClient) else http
        )
        self._litellm: LiteLLMModel | None = None
        self._endpoint: str | None = None  # where the main model's requests go

    @property
    def http(self) -> Vendor:
        if self._http is None:
            self._http = self._new_http()
        return self._http

    def _new_http(self) -> Vendor:
        # One connection per stream, kept for the next (lens.integrations.llm.connections).
        # Making it loads the system's certificates: `warm` does that in a thread.
        return vendor_client(connect_timeout=self.connect_timeout)

    async def warm(self) -> None:
        """Set up before the first learner asks, off the event loop: the HTTP client,
        and litellm when a model (the fallback, say) needs it."""
        if self._http is None:
            made = await asyncio.to_thread(self._new_http)
            if self._http is None:
                self._http = made
            else:
                await made.aclose()
        if any(self._route(m) is None for m in (self.name, self.fallback) if m):
            await asyncio.to_thread(_litellm)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def prepare(self) -> None:
        """Open a connection to the main model's vendor ahead (ConnectionPool.prepare)."""
        if self._http is None:
            return  # not warmed yet: the first request makes the client
        try:
            if self._endpoint is None:
                route = self._route(self.name)
                if route is None:
                    return
                self._endpoint = route.request(system="", messages=[], max_tokens=1).url
            self._http.prepare(self._endpoint)
        except Exception as exc:  # only an optimisation: the request itself says what is wrong
            log.warning("llm.prepare.failed", model=self.name, error=repr(exc))

    def _route(self, model: str) -> direct.Route | None:
        vendor = model.partition("/")[0].lower()
        main = self.same_vendor(model)
        key = (self.api_key if main else None) or self.keys.get(vendor)
        return direct.route_for(model, api_key=key, api_base=self.api_base if main else None)

    async def _open(
        self, model: str, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Opened:
        route = self._route(model)
        if route is None:
            if self._litellm is None:
                self._litellm = LiteLLMModel(
                    model=model, connect_timeout=self.connect_timeout, prices=self.prices
                )
            return await self._litellm._open(
                model, system=system, messages=messages, max_tokens=max_tokens
            )
        response = await self._send(route, system=system, messages=messages,
                                    max_tokens=max_tokens)  # fmt: skip
        return await self._answer(route, response)

    async def send_ahead(
        self, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> SentAhead | None:
        """ChatModel.send_ahead, for the main model's vendor, once warmed, on Lens's own
        client (httpx's, behind a proxy, waits for the answer's head: nothing ahead)."""
        ready = self._http is not None and self._http.sends_ahead
        route = self._route(self.name) if ready else None
        if route is None:
            return None
        sent = _Sent(route, asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(self.first_token_timeout):
                sent.response = await self._send(
                    route, system=system, messages=messages, max_tokens=max_tokens
                )
        except Exception as exc:  # the first try's failure: `stream` judges it
            sent.error = exc
        return sent

    async def _go_on(self, ahead: Any) -> Opened:
        sent: _Sent = ahead
        if sent.error is not None:
            raise sent.error
        assert sent.response is not None
        return await self._answer(sent.route, sent.response)

    async def _send(
        self,
        route: direct.Route,
        *,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
    ) -> Response:
        wanted = route.request(system=system, messages=messages, max_tokens=max_tokens)
        body = json.dumps(wanted.body, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()  # fmt: skip
        return await self.http.send("POST", wanted.url, wanted.headers, body)

    async def _answer(self, route: direct.Route, response: Response) -> Opened:
        """The vendor's answer to a request sent: its stream, or its error raised."""
        try:
            await response.head()
        except BaseException:
            await response.aclose()
            raise
        if response.status_code != 200:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            raise direct.http_error(route.vendor, response.status_code, body)
        return _DirectStream(response, route)

    def _judge(self, exc: Exception) -> tuple[Verdict, Exception]:
        if isinstance(exc, ProviderAccountProblem):
            return "account", exc
        if isinstance(exc, BadAddress):  # LENS_LLM_API_BASE, say: a person must fix it
            return "account", ProviderAccountProblem(str(exc))
        if isinstance(exc, direct.ProviderUnavailable):
            return "retry", exc
        if isinstance(exc, httpx.TransportError):
            return "retry", direct.ProviderUnavailable(
                f"the model provider is unavailable ({type(exc).__name__})"
            )
        if isinstance(exc, IntegrationUnavailable):
            return "retry", exc
        if isinstance(exc, IntegrationRejected):
            return "fatal", exc
        if self._litellm is not None:
            return self._litellm._judge(exc)
        return "fatal", IntegrationRejected(
            f"the model provider refused the request ({type(exc).__name__})"
        )


class _Sent:
    """A request sent ahead (DirectModel.send_ahead): its response to come, or the error
    sending it met."""

    def __init__(self, route: direct.Route, sent_at: float) -> None:
        self.route = route
        self.sent_at = sent_at  # the loop's time: the first-token deadline counts from it
        self.response: Response | None = None
        self.error: Exception | None = None

    async def aclose(self) -> None:
        if self.response is not None:
            await self.response.aclose()


# After `[DONE]` (OpenAI's), the longest Lens waits for the body's end to keep its
# connection for the next request.
FINISH_SECONDS = 0.5


class _DirectStream:
    """A vendor's reply being read: a task of its own reads the events as they come (one
    network chunk each, as the connection hands them over), and `next_text` takes all that has
    arrived since it was last called. `gathers`: the policy may pace its calls
    (PolicyModel.pace) and nothing piles up at the vendor's side."""

    gathers = True

    def __init__(self, response: Response, route: direct.Route) -> None:
        self.response = response
        self.route = route
        self.reader = direct.SSEReader(response)
        self.failed: Exception | None = None
        self._events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Event()
        self._over: BaseException | None = None  # StopAsyncIteration, or what the read raised
        self._reading = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                events = await self.reader.next_events()
                self._events.extend(events)  # the list as it is now, after the wait
                self._arrived.set()
        except asyncio.CancelledError:
            self._over = StopAsyncIteration()
            raise
        except StopAsyncIteration as exc:  # the end of the reply
            await self.reader.finish(FINISH_SECONDS)
            self._over = exc
        except BaseException as exc:
            self._over = exc
        finally:
            self._arrived.set()

    async def next_text(self) -> str:
        """All the text that has arrived (one piece or several, joined). An error event
        after some of it is raised on the next call, so the text before it is kept."""
        if self.failed is not None:
            raise self.failed
        texts: list[str] = []
        while not texts:
            if not self._events:
                if self._over is not None:
                    raise self._over
                self._arrived.clear()
                await self._arrived.wait()
                continue
            events, self._events = self._events, []
            for event, data in events:
                try:
                    texts.extend(self.route.texts(event, data))
                except Exception as exc:
                    if not texts:
                        raise
                    self.failed = exc
                    break
        return "".join(texts)

    def counts(self) -> tuple[int, int]:
        return self.route.counts.prompt_tokens, self.route.counts.completion_tokens

    async def aclose(self) -> None:
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
        await self.response.aclose()


# -- any other model string, through litellm ---------------------------------------------


class LiteLLMModel(PolicyModel):
    """litellm speaks each provider's API from one model string."""

    async def warm(self) -> None:
        """Import litellm (seconds) in a thread before the first learner asks."""
        await asyncio.to_thread(_litellm)

    async def _open(
        self, model: str, *, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Opened:
        litellm = _litellm()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "system", "content": system}, *messages],
            "stream": True,
            "max_tokens": max_tokens,
            "timeout": self.first_token_timeout,
            "stream_options": {"include_usage": True},
            # Retries are ours (before the first token only); the SDKs would retry too.
            "num_retries": 0,
            "max_retries": 0,
        }
        main = self.same_vendor(model)
        if self.api_key and main:
            kwargs["api_key"] = self.api_key
        elif self.api_base and main:
            # A local OpenAI-compatible server needs no key, but the OpenAI SDK refuses
            # to start without one ("Missing credentials"): any placeholder will do.
            kwargs["api_key"] = "no-key-needed"
        if self.api_base and main:
            kwargs["api_base"] = self.api_base
        response = await litellm.acompletion(**kwargs)
        return _LiteLLMStream(response)

    def _judge(self, exc: Exception) -> tuple[Verdict, Exception]:
        problem = _account_problem(exc)
        if problem is not None:
            return "account", ProviderAccountProblem(f"{self.name}: {problem}")
        if isinstance(exc, IntegrationUnavailable):
            return "retry", exc
        if isinstance(exc, IntegrationRejected):
            return "fatal", exc
        return ("retry" if _retryable(exc) else "fatal"), _translate(exc)


class _LiteLLMStream:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.iterator = response.__aiter__()
        self.pending: deque[str] = deque()
        self.prompt_tokens = self.completion_tokens = 0

    async def next_text(self) -> str:
        while not self.pending:
            chunk = await self.iterator.__anext__()
            usage = getattr(chunk, "usage", None)
            if usage:
                self.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
                self.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            for choice in getattr(chunk, "choices", None) or []:
                text = getattr(getattr(choice, "delta", None), "content", None)
                if text:
                    self.pending.append(text)
        return self.pending.popleft()

    def counts(self) -> tuple[int, int]:
        return self.prompt_tokens, self.completion_tokens

    async def aclose(self) -> None:
        close = getattr(self.response, "aclose", None)
        if close is not None:
            await close()


def _litellm() -> Any:
    # Never fetch the price list from the internet at import; use the bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    return litellm


def _account_problem(exc: BaseException) -> str | None:
    """What the vendor said, when it refused Lens's account rather than the request: a key
    it does not accept (401), no permission (403), payment needed (402, Anthropic's
    billing_error), or OpenAI's 429 `insufficient_quota` (quota or billing: a rate limit
    that waiting does not lift, unlike its `rate_limit_exceeded`)."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = ""
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("type") or "")
    if code == "insufficient_quota" or '"insufficient_quota"' in str(exc):
        return f"quota or billing needs attention (insufficient_quota): {_vendor_message(exc)}"
    if status is not None and int(status) in (401, 402, 403):
        return f"{type(exc).__name__} (HTTP {status}): {_vendor_message(exc)}"
    return None


def _vendor_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    found = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', str(exc))
    return (found.group(1) if found else str(exc))[:300]


def _retryable(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return int(status) == 429 or int(status) >= 500
    return type(exc).__name__ in {
        "APIConnectionError",
        "Timeout",
        "ServiceUnavailableError",
        "RateLimitError",
        "InternalServerError",
    }


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, IntegrationUnavailable | IntegrationRejected):
        return exc
    if _retryable(exc):
        return IntegrationUnavailable(f"the model provider is unavailable ({type(exc).__name__})")
    return IntegrationRejected(f"the model provider refused the request ({type(exc).__name__})")

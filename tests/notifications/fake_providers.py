"""SendGrid and Discord as HTTP servers on localhost, for tests with real worker
processes. Discord keeps one message per nonce, as the real API does with
`enforce_nonce`; SendGrid has no such thing, so every accepted e-mail counts."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contracts.discord.checks import check_request as check_discord_request
from tests.contracts.discord.checks import check_response as check_discord_response
from tests.contracts.validator import Operation
from tests.fixtures.fake_discord import dm_channel_object, message_object, user_object
from tests.integrations.fake_sendgrid import CONTRACT as SENDGRID
from tests.integrations.fake_sendgrid import UNAUTHORIZED, authorized

DM_CHANNEL_IDS = 4 * 10**17  # + the recipient's id: one DM channel per person
MESSAGE_IDS = 1_400_000_000_000_000_000
DISCORD_BOT = user_object("1300000000000000001", "Lens", bot=True)


@dataclass
class Providers:
    emails: list[tuple[str, str]] = field(default_factory=list)  # (to, X-Lens-Delivery)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (channel, nonce)
    nonces: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: tuple[float, float] = (0.002, 0.010)
    discord_token: str = "bot-test"  # DISCORD_BOT_TOKEN of the workers under test

    @property
    def received(self) -> int:
        with self.lock:
            return len(self.emails) + len(self.messages)

    def email_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(to for to, _ in self.emails)

    def message_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(channel for channel, _ in self.messages)

    async def _wait(self) -> None:
        await asyncio.sleep(random.uniform(*self.latency))

    async def sendgrid(self, request: Request) -> Response:
        # Held to SendGrid's description like the other SendGrid fakes
        # (tests/integrations/fake_sendgrid.py): the request must fit it, a request
        # without a bearer key is refused with 401, and the answers must fit it too.
        raw = await request.body()
        operation = SENDGRID.check_request(
            httpx.Request("POST", str(request.url), headers=request.headers.raw, content=raw)
        )
        if not authorized(request.headers, None):
            SENDGRID.check_response(operation, httpx.Response(401, json=UNAUTHORIZED))
            return JSONResponse(UNAUTHORIZED, status_code=401)
        body = json.loads(raw)
        await self._wait()
        to = body["personalizations"][0]["to"][0]["email"]
        with self.lock:
            self.emails.append((to, body.get("headers", {}).get("X-Lens-Delivery", "")))
        SENDGRID.check_response(operation, httpx.Response(202))
        return Response(status_code=202)

    # Discord: held to Discord's description like the other Discord fakes
    # (tests/contracts/discord/checks.py): requests and answers must fit it, a request
    # without the bot's token gets Discord's 401, and ids are snowflakes.

    def _discord_answer(self, operation: Operation, status: int, payload: Any) -> Response:
        check_discord_response(operation, httpx.Response(status, json=payload))
        return JSONResponse(payload, status_code=status)

    async def _discord_request(self, request: Request) -> tuple[Operation, Any, Response | None]:
        raw = await request.body()
        operation = check_discord_request(
            httpx.Request(
                request.method, str(request.url), headers=request.headers.raw, content=raw
            )
        )
        if request.headers.get("Authorization") != f"Bot {self.discord_token}":
            unauthorized = {"message": "401: Unauthorized", "code": 0}
            return operation, None, self._discord_answer(operation, 401, unauthorized)
        return operation, json.loads(raw), None

    async def open_dm(self, request: Request) -> Response:
        operation, body, refused = await self._discord_request(request)
        if refused is not None:
            return refused
        recipient = body["recipient_id"]
        channel = str(DM_CHANNEL_IDS + int(recipient))
        return self._discord_answer(
            operation, 200, dm_channel_object(channel, user_object(recipient, "member"))
        )

    async def post_message(self, request: Request) -> Response:
        operation, body, refused = await self._discord_request(request)
        if refused is not None:
            return refused
        await self._wait()
        channel = request.path_params["channel"]
        nonce = body.get("nonce")
        with self.lock:
            if body.get("enforce_nonce") and nonce in self.nonces:
                message_id = self.nonces[nonce]
            else:
                self.messages.append((channel, nonce or ""))
                message_id = str(MESSAGE_IDS + len(self.messages))
                if nonce:
                    self.nonces[nonce] = message_id
        message = message_object(message_id, channel, body["content"], DISCORD_BOT)
        if nonce:
            message["nonce"] = nonce
        return self._discord_answer(operation, 200, message)


class ProviderServer:
    def __init__(self) -> None:
        self.providers = Providers()
        p = self.providers
        app = Starlette(
            routes=[
                Route("/v3/mail/send", p.sendgrid, methods=["POST"]),
                Route("/api/v10/users/@me/channels", p.open_dm, methods=["POST"]),
                Route("/api/v10/channels/{channel}/messages", p.post_message, methods=["POST"]),
            ]
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProviderServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake providers did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

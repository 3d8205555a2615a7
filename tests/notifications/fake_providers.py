"""SendGrid and Discord as HTTP servers on localhost, for tests with real worker
processes. Discord keeps one message per nonce, as the real API does with
`enforce_nonce`; SendGrid has no such thing, so every accepted e-mail counts."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Providers:
    emails: list[tuple[str, str]] = field(default_factory=list)  # (to, X-Lens-Delivery)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (channel, nonce)
    nonces: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: tuple[float, float] = (0.002, 0.010)

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
        body = await request.json()
        await self._wait()
        to = body["personalizations"][0]["to"][0]["email"]
        with self.lock:
            self.emails.append((to, body.get("headers", {}).get("X-Lens-Delivery", "")))
        return Response(status_code=202)

    async def open_dm(self, request: Request) -> Response:
        body = await request.json()
        return JSONResponse({"id": f"dm{body['recipient_id']}", "type": 1})

    async def post_message(self, request: Request) -> Response:
        body = await request.json()
        await self._wait()
        channel = request.path_params["channel"]
        nonce = body.get("nonce")
        with self.lock:
            if body.get("enforce_nonce") and nonce in self.nonces:
                return JSONResponse({"id": self.nonces[nonce], "channel_id": channel})
            self.messages.append((channel, nonce or ""))
            message_id = str(len(self.messages))
            if nonce:
                self.nonces[nonce] = message_id
        return JSONResponse({"id": message_id, "channel_id": channel})


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

"""A fake OpenAI-compatible streaming chat server for bench/tutor.py (its own process).

Plain asyncio (uvloop when installed), HTTP/1.1 keep-alive with chunked bodies, so
hundreds of concurrent streams cost it little. Every streamed reply waits a fixed
delay before the first token, then sends N tokens a fixed delay apart, a last chunk with
the finish reason and `data: [DONE]`, in OpenAI's shapes (as tests/integrations/fake_openai.py):
the usage only when the request asks for it (`stream_options.include_usage`), on a chunk of
its own with empty `choices`, and `usage: null` on every chunk before it. Nothing here
checks its own answers (that would cost time inside the measurement);
tests/contracts/test_bench_fake_llm.py drives this server and checks every request and
answer against OpenAI's description (tests/contracts/openai).

    python bench/_fake_llm.py --port 9000 [--first-token-delay 0.2] [--token-delay 0.02]
        [--tokens 50]

Also answers GET /health (with the reply text every stream carries), GET /stats
(requests, active and peak concurrent streams; ?reset=1 starts a new peak) and GET
/last-request (the last chat body it received, so the bench can send the provider exactly
what Lens sends).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from typing import Any

PROMPT_TOKENS = 42


class FakeProvider:
    def __init__(self, *, first_token_delay: float, token_delay: float, tokens: int) -> None:
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay
        self.tokens = tokens
        self.requests = 0
        self.active = 0
        self.peak_active = 0
        self.closed_early = 0
        # When the streamed requests since the last reset arrived (first, last).
        self.arrived: list[float] = []
        # When the first token of each of those was sent (time.monotonic(), as `arrived`).
        self.first_sent: list[float] = []
        self.last_request: dict[str, Any] | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                keep_alive = headers.get("connection", "").lower() != "close"
                if method == "POST" and path.endswith("/chat/completions"):
                    await self._chat(writer, json.loads(body), keep_alive)
                elif method == "GET" and path.startswith("/stats"):
                    await self._json(writer, self._stats(), keep_alive)
                    if path.endswith("reset=1"):
                        self.peak_active = self.active
                        self.arrived = []
                        self.first_sent = []
                elif method == "GET" and path == "/last-request":
                    await self._json(writer, self.last_request, keep_alive)
                elif method == "GET" and path == "/health":
                    reply = "".join(self._token(i) for i in range(self.tokens))
                    await self._json(writer, {"ok": True, "reply": reply}, keep_alive)
                else:
                    await self._json(writer, not_found(method, path), keep_alive, status=404)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_early += 1
        finally:
            writer.close()

    def _stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "active": self.active,
            "peak_active": self.peak_active,
            "closed_early": self.closed_early,
            # ms from the first streamed request to the last since the reset
            "arrival_spread_ms": round(1000 * (max(self.arrived) - min(self.arrived)))
            if self.arrived
            else 0,
            # the monotonic clock is the machine's: the bench compares these with its own
            "arrived": self.arrived,
            "first_sent": self.first_sent,
        }

    async def _json(
        self, writer: asyncio.StreamWriter, data: object, keep_alive: bool, status: int = 200
    ) -> None:
        payload = json.dumps(data).encode()
        reason = "OK" if status == 200 else "Not Found"
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    async def _chat(
        self, writer: asyncio.StreamWriter, body: dict[str, Any], keep_alive: bool
    ) -> None:
        received = time.monotonic()
        self.requests += 1
        self.last_request = body
        model = body.get("model", "fake")
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if not body.get("stream"):
            text = "".join(self._token(i) for i in range(self.tokens))
            await asyncio.sleep(self.first_token_delay)
            await self._json(
                writer,
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": self._usage(),
                },
                keep_alive,
            )
            return
        self.active += 1
        self.arrived.append(received)
        self.peak_active = max(self.peak_active, self.active)
        try:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                + (
                    b"Connection: keep-alive\r\n\r\n"
                    if keep_alive
                    else b"Connection: close\r\n\r\n"
                )
            )
            await writer.drain()
            # The delay counts from when the request arrived, as a provider's would.
            await asyncio.sleep(max(0.0, self.first_token_delay - (time.monotonic() - received)))
            for i in range(self.tokens):
                if i:
                    await asyncio.sleep(self.token_delay)
                delta = {"content": self._token(i)}
                if i == 0:
                    delta["role"] = "assistant"
                chunk = _chunk(model, [_choice(delta, None)], with_usage)
                await self._send(writer, f"data: {json.dumps(chunk)}\n\n")
                if i == 0:
                    self.first_sent.append(time.monotonic())
            final = f"data: {json.dumps(_chunk(model, [_choice({}, 'stop')], with_usage))}\n\n"
            if with_usage:
                last = {**_chunk(model, [], False), "usage": self._usage()}
                final += f"data: {json.dumps(last)}\n\n"
            await self._send(writer, final + "data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.active -= 1

    @staticmethod
    def _token(i: int) -> str:
        return ("Good" if i == 0 else f" word{i}") + ("." if i % 10 == 9 else "")

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": self.tokens,
            "total_tokens": PROMPT_TOKENS + self.tokens,
        }

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


def _chunk(model: str, choices: list[dict[str, Any]], null_usage: bool) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": choices,
    }
    if null_usage:  # asked for usage: null on every chunk but the usage chunk
        chunk["usage"] = None
    return chunk


def _choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def not_found(method: str, path: str) -> dict[str, Any]:
    """OpenAI's answer to a path it does not serve (an `ErrorResponse`)."""
    return {
        "error": {
            "message": f"Invalid URL ({method} {path})",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


async def serve(args: argparse.Namespace) -> None:
    provider = FakeProvider(
        first_token_delay=args.first_token_delay, token_delay=args.token_delay, tokens=args.tokens
    )
    tls = None
    if args.tls_cert:  # HTTPS, as a vendor's API is
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = await asyncio.start_server(
        provider.handle, args.host, args.port, backlog=1024, limit=2**20, ssl=tls
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-token-delay", type=float, default=0.2, help="seconds")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per reply")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the certificate's key (PEM)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))


if __name__ == "__main__":
    main()

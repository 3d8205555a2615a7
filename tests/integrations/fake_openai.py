"""A fake OpenAI-compatible chat server on loopback, streaming server-sent events.

Behaviour per request is scripted: a list of "steps" for the next requests, each one of
("stream", [words]), ("status", code), ("error", (code, error object)), ("stall",
seconds), ("break_after", ([words], n)), ("pause_after", ([words], n, seconds)): n words,
then silence for that long before the rest.

It answers in OpenAI's shapes and checks them against OpenAI's description
(`Contract.load("openai")`): every chunk is a `CreateChatCompletionStreamResponse`, the
usage comes (only when the request asks with `stream_options.include_usage`) on a last
chunk of its own whose `choices` is empty, with `usage: null` on the chunks before it;
errors are `ErrorResponse` bodies; a request without the key is refused with 401. Each
request is checked against `CreateChatCompletionRequest` and each answer's status against
OpenAI's documented ones (tests/contracts/chat_checks.py). A
mismatch is recorded in the contract's VIOLATIONS (the server runs in its own thread, so
the test fails on the autouse check rather than on the raise).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.contracts.chat_checks import as_request, check_answer, check_openai_stream
from tests.contracts.chat_checks import check_request as check_chat_request
from tests.contracts.validator import Contract, Operation
from tests.integrations.openai_errors import errors

CONTRACT = Contract.load("openai")
# OpenAI's error answers by status (its error-codes guide; `Error` requires all four keys).
ERRORS = errors(
    "gpt-4o-mini",
    limit=500,
    bad_request={
        "message": "This model's maximum context length is 128000 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    },
)


JSON = {"Content-Type": "application/json"}


class FakeOpenAI:
    def __init__(self, *, api_key: str | None = "sk-test") -> None:
        """`api_key` None: a local server that takes no key (any Authorization, or
        none, is accepted)."""
        self.api_key = api_key
        self.script: list[tuple[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.closed_early = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            request_sent: httpx.Request
            operation: Operation | None

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                fake.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                self.request_sent = as_request("POST", "openai", self.path, self.headers, raw)
                self.operation = check_chat_request("openai", self.request_sent)
                self.sent: list[str] = []
                if fake.api_key is not None and (
                    self.headers.get("Authorization") != f"Bearer {fake.api_key}"
                ):
                    self._error(401, ERRORS[401])
                    return
                step = fake.script.pop(0) if fake.script else ("stream", ["Hello", " there", "!"])
                kind, arg = step
                if kind == "status":
                    self._error(arg, ERRORS[arg])
                    return
                if kind == "error":
                    self._error(*arg)
                    return
                if kind == "stall":
                    time.sleep(arg)
                    arg = ["late"]
                words = arg if kind in ("stream", "stall") else arg[0]
                stop_after = None if kind != "break_after" else arg[1]
                pause_after, pause = (arg[1], arg[2]) if kind == "pause_after" else (None, 0)
                with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self._chunk(body, with_usage, {"role": "assistant", "content": ""})
                    for i, word in enumerate(words):
                        if stop_after is not None and i == stop_after:
                            self.wfile.flush()
                            self.connection.shutdown(2)  # the provider drops the stream
                            return
                        if pause_after is not None and i == pause_after:
                            self.wfile.flush()
                            time.sleep(pause)  # the provider goes quiet mid-reply
                        self._chunk(body, with_usage, {"content": word})
                        time.sleep(0.01)
                    self._chunk(body, with_usage, {}, finish="stop")
                    if with_usage:
                        self._send(
                            {
                                **_head(body),
                                "choices": [],
                                "usage": {
                                    "prompt_tokens": 42,
                                    "completion_tokens": len(words),
                                    "total_tokens": 42 + len(words),
                                },
                            }
                        )
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    check_openai_stream([*self.sent, "[DONE]"], body, "chat stream")
                except (BrokenPipeError, ConnectionResetError):
                    fake.closed_early += 1

            def _chunk(
                self,
                body: dict[str, Any],
                with_usage: bool,
                delta: dict[str, Any],
                finish: str | None = None,
            ) -> None:
                chunk: dict[str, Any] = {
                    **_head(body),
                    "choices": [
                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
                if with_usage:
                    chunk["usage"] = None  # null on every chunk but the last
                self._send(chunk)

            def _send(self, chunk: dict[str, Any]) -> None:
                CONTRACT.check_schema(chunk, "CreateChatCompletionStreamResponse", "chat chunk")
                self.sent.append(json.dumps(chunk))
                self.wfile.write(f"data: {self.sent[-1]}\n\n".encode())
                self.wfile.flush()

            def _error(self, status: int, error: dict[str, Any]) -> None:
                payload = {"error": error}
                data = json.dumps(payload).encode()
                check_answer(
                    "openai",
                    self.request_sent,
                    self.operation,
                    httpx.Response(status, content=data, headers=JSON),
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _head(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-lens1",
        "object": "chat.completion.chunk",
        "created": 1754892211,
        "model": body["model"],
        "system_fingerprint": "fp_34a54ae93c",
    }

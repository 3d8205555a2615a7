"""A fake OpenAI-compatible chat server on loopback, streaming server-sent events.

Behaviour per request is scripted: a list of "steps" for the next requests, each one of
("stream", [words]), ("status", code), ("stall", seconds), ("break_after", n_words).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[tuple[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.closed_early = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                step = fake.script.pop(0) if fake.script else ("stream", ["Hello", " there", "!"])
                kind, arg = step
                if kind == "status":
                    payload = json.dumps({"error": {"message": "scripted", "type": "x"}}).encode()
                    self.send_response(arg)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if kind == "stall":
                    time.sleep(arg)
                    arg = ["late"]
                words = arg if kind in ("stream", "stall") else arg[0]
                stop_after = None if kind != "break_after" else arg[1]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for i, word in enumerate(words):
                        if stop_after is not None and i == stop_after:
                            self.wfile.flush()
                            self.connection.shutdown(2)  # the provider drops the stream
                            return
                        chunk = {
                            "id": "c1",
                            "object": "chat.completion.chunk",
                            "created": 1,
                            "model": body["model"],
                            "choices": [
                                {"index": 0, "delta": {"content": word}, "finish_reason": None}
                            ],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(0.01)
                    final = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 1,
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": {
                            "prompt_tokens": 42,
                            "completion_tokens": len(words),
                            "total_tokens": 42 + len(words),
                        },
                    }
                    self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    fake.closed_early += 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

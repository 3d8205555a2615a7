"""Recorded vendor exchanges (tests/contracts/<vendor>/recorded) served over loopback HTTP.

Each vendor folder's `exchanges.json` names its recordings: the file with the answer's
body (a `.sse` stream or a `.json` error), its status, its headers, and where its shape
comes from. `ReplayServer` answers each request with the next scripted exchange, event by
event for a stream, and keeps what it was sent, so a test can run Lens's real model client
(litellm speaking the vendor's protocol) against the vendor's own wire format.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.contracts.chat_checks import as_request, checked

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


@dataclass(frozen=True)
class Exchange:
    vendor: str
    name: str
    status: int
    headers: dict[str, str]
    body: bytes
    source: str

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)

    def events(self) -> list[bytes]:
        """The stream cut into its server-sent events (blank-line separated)."""
        text = self.body.decode()
        separator = "\r\n\r\n" if "\r\n\r\n" in text else "\n\n"
        return [(part + separator).encode() for part in text.split(separator) if part.strip()]


def recorded(vendor: str, name: str) -> Exchange:
    folder = CONTRACTS / vendor / "recorded"
    entry = json.loads((folder / "exchanges.json").read_text(encoding="utf-8"))[name]
    return Exchange(
        vendor=vendor,
        name=name,
        status=int(entry["status"]),
        headers={k.lower(): v for k, v in entry["headers"].items()},
        body=(folder / entry["file"]).read_bytes(),
        source=entry["source"],
    )


def all_recorded(vendor: str) -> list[Exchange]:
    folder = CONTRACTS / vendor / "recorded"
    names = json.loads((folder / "exchanges.json").read_text(encoding="utf-8"))
    return [recorded(vendor, name) for name in names]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ReplayServer:
    """Answers each request with the next exchange of `script` (the last one repeats)."""

    script: list[Exchange] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    event_delay: float = 0.005

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                replay.received.append(
                    Received(
                        method="POST",
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=json.loads(raw) if raw else None,
                    )
                )
                exchange = replay.script.pop(0) if len(replay.script) > 1 else replay.script[0]
                request = as_request("POST", exchange.vendor, self.path, self.headers, raw)
                checked(exchange.vendor, lambda _: exchange.response())(request)
                self.send_response(exchange.status)
                for name, value in exchange.headers.items():
                    self.send_header(name, value)
                if not exchange.is_stream:
                    self.send_header("Content-Length", str(len(exchange.body)))
                    self.end_headers()
                    self.wfile.write(exchange.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for event in exchange.events():
                        self.wfile.write(event)
                        self.wfile.flush()
                        time.sleep(replay.event_delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

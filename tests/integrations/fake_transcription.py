"""OpenAI's transcription endpoint, faked at the HTTP layer (httpx.MockTransport)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx


@dataclass
class FakeTranscriptionAPI:
    text: str = "What does alignment mean?"
    duration: float | None = 4.0
    statuses: list[int] = field(default_factory=list)  # answered first, one per request
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/audio/transcriptions"), request.url
        assert request.method == "POST"
        self.requests.append(request)
        if self.statuses:
            status = self.statuses.pop(0)
            return httpx.Response(status, json={"error": {"message": f"scripted {status}"}})
        body: dict[str, object] = {"text": self.text}
        if self.duration is not None:
            body["duration"] = self.duration
        return httpx.Response(
            200, content=json.dumps(body), headers={"content-type": "application/json"}
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def multipart_fields(request: httpx.Request) -> dict[str, bytes]:
    """Name -> value of each part (files included), read the way a server would."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    out = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, value = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        out[name] = value
        if b'filename="' in head:
            out[name + ".filename"] = head.split(b'filename="')[1].split(b'"')[0]
    return out

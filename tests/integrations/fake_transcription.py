"""OpenAI's transcription endpoint, faked at the HTTP layer (httpx.MockTransport) and held
to OpenAI's description (tests/contracts/openai/openapi.excerpt.json).

It answers the way the description says each model does: whisper-1 with `verbose_json`
(`text`, `language`, `duration`, `usage` of type "duration"), the gpt-4o transcribe models
with `json` (`text` and `usage` of type "tokens", never a `duration`); it refuses a
request without the key (401), `verbose_json` from a gpt-4o model (400), and errors come as
`{"error": {"message", "type", "param", "code"}}`.

Checked on every request: the operation (through `Contract.load("openai")`), the multipart
field names and values against `CreateTranscriptionRequest` (the validator does not read
multipart bodies), and the answer against the schema of the format asked for. The
description's 200 is a `oneOf` of the JSON, diarized and verbose answers, which no verbose
answer can pass (it fits the plain JSON schema too), so the fake picks the schema by
`response_format`, as OpenAI does, and also refuses a field that schema does not list.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.contracts.chat_checks import OPENAI_ERRORS
from tests.contracts.validator import Contract
from tests.integrations.openai_errors import errors

CONTRACT = Contract.load("openai")
SCHEMAS = CONTRACT.spec["components"]["schemas"]
ANSWERS = {  # response_format -> the schema of its answer
    "json": "CreateTranscriptionResponseJson",
    "verbose_json": "CreateTranscriptionResponseVerboseJson",
}
# OpenAI's error answers (its error-codes guide): the operation lists only 200.
ERRORS = errors(
    "whisper-1",
    limit=50,
    bad_request={
        "message": "Audio file might be corrupted or unsupported",
        "type": "invalid_request_error",
        "param": "file",
        "code": "invalid_value",
    },
)
TOKEN_MODELS = {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15"}


@dataclass
class FakeTranscriptionAPI:
    text: str = "What does alignment mean?"
    seconds: float = 4.0  # the recording's length
    api_key: str = "sk-test"
    # Answered first, one per request: a status (with OpenAI's error body for it) or
    # (status, error object).
    statuses: list[int | tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = CONTRACT.check_request(request)
        assert (operation.method, operation.template) == ("POST", "/audio/transcriptions")
        self.requests.append(request)
        fields = check_fields(request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, ERRORS[401])
        if self.statuses:
            scripted = self.statuses.pop(0)
            status, body = scripted if isinstance(scripted, tuple) else (scripted, ERRORS[scripted])
            return self._error(status, body)
        model = fields["model"].decode()
        kind = fields.get("response_format", b"json").decode()
        if model in TOKEN_MODELS and kind != "json":
            return self._error(
                400,
                {
                    "message": f"response_format '{kind}' is not compatible with model "
                    f"'{model}'. Use 'json' or 'text' instead.",
                    "type": "invalid_request_error",
                    "param": "response_format",
                    "code": "unsupported_value",
                },
            )
        body = self.verbose() if kind == "verbose_json" else self.plain(model)
        check_answer(body, kind)
        return httpx.Response(
            200, content=json.dumps(body), headers={"content-type": "application/json"}
        )

    def verbose(self) -> dict[str, Any]:
        return {
            "task": "transcribe",
            "language": "english",
            "duration": self.seconds,
            "text": self.text,
            "segments": [
                {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": self.seconds,
                    "text": f" {self.text.strip()}",
                    "tokens": [50364, 440, 50530],
                    "temperature": 0.0,
                    "avg_logprob": -0.286,
                    "compression_ratio": 1.236,
                    "no_speech_prob": 0.0098,
                }
            ],
            # Billed in whole seconds.
            "usage": {"type": "duration", "seconds": math.ceil(self.seconds)},
        }

    def plain(self, model: str) -> dict[str, Any]:
        if model not in TOKEN_MODELS:  # whisper-1 asked for plain json: billed by duration
            return {"text": self.text, "usage": {"type": "duration", "seconds": self.seconds}}
        audio = round(self.seconds * 10)  # about ten audio tokens a second
        output = max(1, round(len(self.text.split()) * 1.3))
        return {
            "text": self.text,
            "usage": {
                "type": "tokens",
                "input_tokens": audio,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
                "output_tokens": output,
                "total_tokens": audio + output,
            },
        }

    def _error(self, status: int, error: dict[str, Any]) -> httpx.Response:
        if status not in OPENAI_ERRORS:
            CONTRACT.fail(f"transcription answer {status}", "not a status OpenAI documents")
        body = {"error": error}
        CONTRACT.check_schema(body, "ErrorResponse", f"transcription answer {status}")
        return httpx.Response(status, json=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def check_fields(request: httpx.Request) -> dict[str, bytes]:
    """The multipart request, checked against `CreateTranscriptionRequest`: only its
    fields, `file` and `model` present, `file` an uploaded file, values of the right kind."""
    fields = multipart_fields(request)
    form: dict[str, Any] = {}
    for name, value in fields.items():
        if name.endswith((".filename", ".content_type")):
            continue
        form[name] = "<binary>" if name == "file" else value.decode()
    CONTRACT.check_schema(form, "CreateTranscriptionRequest", "transcription request fields")
    if "file.filename" not in fields:
        CONTRACT._fail("transcription request fields", "`file` is not an uploaded file")
    return fields


def check_answer(body: dict[str, Any], response_format: str) -> None:
    schema = ANSWERS[response_format]
    what = f"transcription answer ({response_format})"
    CONTRACT.check_schema(body, schema, what)
    listed = set(SCHEMAS[schema]["properties"])
    if response_format == "verbose_json":
        listed.add("task")  # in the description's own example, though not in its schema
    extra = sorted(set(body) - listed)
    if extra:
        CONTRACT._fail(what, f"fields {extra} are not in {schema}")


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
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-type:"):
                    out[name + ".content_type"] = line.split(b":", 1)[1].strip()
    return out

from __future__ import annotations

import json

import httpx

from lens.logging import configure_logging


async def test_json_logs_carry_the_request_id_and_no_secrets(app_client: httpx.AsyncClient, capsys):
    configure_logging(level="INFO", json=True)
    try:
        response = await app_client.get("/privacy", headers={"X-Request-ID": "req-test-123456"})
        from lens.logging import get_logger

        get_logger("lens.test").info("auth.sent", api_key="sk-live-123", user_id=7)
    finally:
        configure_logging(level="INFO", json=False)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    request_line = next(line for line in lines if line["event"] == "http.request")
    assert request_line["request_id"] == "req-test-123456" == response.headers["x-request-id"]
    assert request_line["path"] == "/privacy" and request_line["status"] == 200
    secret_line = next(line for line in lines if line["event"] == "auth.sent")
    assert secret_line["api_key"] == "[redacted]" and secret_line["user_id"] == 7


async def test_the_request_line_follows_the_level_and_the_format(
    app_client: httpx.AsyncClient, capsys
) -> None:
    # Each request's line is written apart from the standard library's logging
    # (lens.logging.log_request): it still obeys the level and the console format.
    try:
        configure_logging(level="WARNING", json=True)
        await app_client.get("/privacy")
        assert "http.request" not in capsys.readouterr().err
        configure_logging(level="INFO", json=False)
        await app_client.get("/privacy", headers={"X-Request-ID": "req-console-1234"})
        line = next(x for x in capsys.readouterr().err.splitlines() if "http.request" in x)
        assert "request_id=req-console-1234" in line and "path=/privacy" in line
        assert "[lens.web]" in line and "status=200" in line
    finally:
        configure_logging(level="INFO", json=False)


def test_a_broken_stderr_does_not_fail_the_request(monkeypatch) -> None:
    # The request line is written last, in the middleware's `finally`: an error there
    # would replace the request's own and skip clearing its context.
    import sys

    from lens.logging import log_request

    class Broken:
        def write(self, _text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    configure_logging(level="INFO", json=True)
    try:
        monkeypatch.setattr(sys, "stderr", Broken())
        log_request(method="GET", path="/privacy", status=200, ms=1.0)
    finally:
        monkeypatch.undo()
        configure_logging(level="INFO", json=False)

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import OutboundNetworkBlocked


async def test_outbound_http_fails_loudly() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(OutboundNetworkBlocked, match=r"discord\.com"):
            await client.get("https://discord.com/api/v10/users/@me")


def test_raw_socket_to_a_public_address_fails() -> None:
    with socket.socket() as s, pytest.raises(OutboundNetworkBlocked):
        s.connect(("93.184.216.34", 443))


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())

"""What create_app assembles (lens/app/factory.py)."""

from __future__ import annotations

import httpx


async def test_openapi_schema_is_served(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/readyz" in response.json()["paths"]

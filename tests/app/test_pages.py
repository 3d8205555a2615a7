"""The app's own pages (lens/app/pages.py): privacy and terms."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path,heading", [("/privacy", "Privacy"), ("/terms", "Terms of use")])
async def test_legal_pages(app_client: httpx.AsyncClient, path: str, heading: str) -> None:
    response = await app_client.get(path)
    assert response.status_code == 200
    assert f"<h1>{heading}</h1>" in response.text

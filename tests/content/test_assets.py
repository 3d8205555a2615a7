"""GET /content/assets/<path>: the images the current snapshot keeps, and nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lens.content.pages import safe_asset_path
from lens.content.service import sync_content
from lens.content.sources import FolderSource
from lens.db.engine import unit_of_work
from lens.web.security import CONTENT_SECURITY_POLICY
from tests.content.course_images import (
    DIAGRAM,
    FIGURE,
    SVG,
    UNUSED,
    png,
    repository,
    require_embeds,
    write,
)


@pytest.fixture
async def site(tmp_path: Path, client_factory):
    root = tmp_path / "course"
    write(root, repository())
    write(root, {"Lenses/images/draft.png": png(8), "modules/wip/sketch.png": png(8)})
    # Start-up syncs the folder and the content store loads it.
    async with client_factory(CONTENT_DIR=str(root)) as client:
        yield client, root


async def test_an_embedded_image_is_served_with_its_type_and_cache_headers(site) -> None:
    client, _ = site
    assert DIAGRAM in require_embeds()
    response = await client.get(f"/content/assets/{DIAGRAM}")
    assert response.status_code == 200
    assert response.content == png(1)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "public, max-age=3600"
    etag = response.headers["etag"]
    assert etag == f'"{hashlib.sha256(png(1)).hexdigest()}"'
    # A raster image gets the site's policy like every response (harmless to an image).
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "set-cookie" not in response.headers  # cacheable by anyone

    again = await client.get(f"/content/assets/{DIAGRAM}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag


async def test_an_svg_cannot_run_script(site) -> None:
    client, _ = site
    require_embeds()
    response = await client.get(f"/content/assets/{FIGURE}")
    assert response.status_code == 200 and response.content == SVG
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        UNUSED,  # in the repository, embedded by nothing: not kept
        "articles/attachments/nope.png",
        "Lenses/images/draft.png",
        "modules/wip/sketch.png",
        "README.md",
        "modules/welcome.md",  # content files are not assets
        "%2E%2E/%2E%2E/etc/passwd.png",
        "articles/%2E%2E/articles/attachments/diagram.png",  # would name a kept image
        "articles/attachments/..%2F..%2Fdiagram.png",
        "/articles/attachments/diagram.png",  # absolute
        "%2Fetc%2Fhostname.png",
        "articles%5Cattachments%5Cdiagram.png",  # backslashes
        "",
    ],
)
async def test_anything_else_is_not_found(site, path: str) -> None:
    client, _ = site
    response = await client.get(f"/content/assets/{path}")
    assert response.status_code == 404, path
    assert response.content != png(1)


def test_paths_that_climb_out_or_start_at_the_root_are_refused() -> None:
    assert safe_asset_path(DIAGRAM)
    assert safe_asset_path("Lenses/images/My diagram.PNG")
    for path in [
        "../diagram.png",
        "articles/../../diagram.png",
        "articles/./diagram.png",
        "/etc/diagram.png",
        "articles//diagram.png",
        "articles\\diagram.png",
        ".obsidian/icon.png",
        "articles/attachments/diagram.png\0.png",
        "articles/attachments/diagram.txt",
    ]:
        assert not safe_asset_path(path), path


async def test_the_current_snapshot_is_what_is_served(site) -> None:
    client, root = site
    require_embeds()
    (root / DIAGRAM).write_bytes(png(5))
    app = client.app
    async with unit_of_work(app.state.lens.sessionmaker) as session:
        assert (await sync_content(session, source=FolderSource(root))).changed
    old = await client.get(f"/content/assets/{DIAGRAM}")
    assert old.content == png(1)  # this process still shows the previous snapshot
    assert await app.state.content.refresh()
    new = await client.get(f"/content/assets/{DIAGRAM}")
    assert new.content == png(5) and new.headers["etag"] != old.headers["etag"]

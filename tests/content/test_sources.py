"""Sources read images as well as content files: which ones, their bytes, the size cap."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from lens.content.files import MAX_ASSET_BYTES, read_folder
from lens.content.sources import Change, FolderSource, GitCheckoutSource, GitHubSource
from lens.integrations.github import GitHubClient
from tests.content.course_images import DIAGRAM, FIGURE, SVG, UNUSED, png, repository, write
from tests.content.fake_github import OWNER_REPO, FakeGitHub, History
from tests.content.github_contract import checked

PHOTO = "articles/attachments/Photo.JPG"  # any case of the extension
HUGE = "Lenses/images/huge.png"
TOO_LARGE = b"\x89PNG" + b"\0" * MAX_ASSET_BYTES  # just over the cap
AT_THE_CAP = "Lenses/images/at-the-cap.gif"
PRESENT = {DIAGRAM, FIGURE, UNUSED, PHOTO, AT_THE_CAP}


def first_commit() -> dict[str, str | bytes]:
    files = repository()
    files.update(
        {
            PHOTO: png(9),
            HUGE: TOO_LARGE,
            AT_THE_CAP: b"G" * MAX_ASSET_BYTES,
            "modules/drafts/sketch.png": png(3),  # a draft
            "articles/attachments/data.csv": "a,b\n",  # not an image
            "Lenses/images/notes.txt": "not an image either",
        }
    )
    return files


SECOND_COMMIT = {
    "write": {
        DIAGRAM: png(5),
        "Lenses/images/new.webp": b"RIFF....WEBP",
        PHOTO: TOO_LARGE,  # grew over the cap: as if gone
        "README.md": "changed",
        "modules/drafts/sketch.png": png(4),
    },
    "delete": [UNUSED],
    "rename": [(FIGURE, "modules/figures/figure.svg")],
}
EXPECTED_CHANGES = {
    Change(DIAGRAM, None, png(5)),
    Change("Lenses/images/new.webp", None, b"RIFF....WEBP"),
    Change(PHOTO, None),
    Change(UNUSED, None),
    Change(FIGURE, None),
    Change("modules/figures/figure.svg", None, SVG),
}


def too_large(logs: list[dict]) -> set[str]:
    return {e["path"] for e in logs if e["event"] == "content.asset.too_large"}


async def test_folder_source_lists_images_and_reads_them_on_request(tmp_path: Path) -> None:
    root = tmp_path / "course"
    write(root, first_commit())
    source = FolderSource(root)
    with capture_logs() as logs:
        head = await source.head()
    tree = await source.fetch_all(head)
    assert tree.files == read_folder(root) and len(tree.files) == 15
    assert tree.assets == dict.fromkeys(PRESENT)  # listed; bytes read when embedded
    assert too_large(logs) == {HUGE}
    read = await source.read_assets(head, [DIAGRAM, FIGURE, HUGE, "../outside.png"])
    assert read == {DIAGRAM: png(1), FIGURE: SVG}
    assert await source.changes(head, head) is None  # always read whole

    (root / "README.md").write_text("not content")
    assert await source.head() == head
    (root / UNUSED).write_bytes(png(6))
    assert await source.head() != head  # an image's bytes count


@pytest.fixture(params=["git", "github"])
async def repo_source(request, tmp_path: Path):
    history = History(tmp_path / "repo")
    history.commit("1", write=first_commit())
    history.commit("2", **SECOND_COMMIT)
    if request.param == "git":
        yield history, GitCheckoutSource(history.root, "main"), None
        return
    fake = FakeGitHub(history, head=history.commits[-1])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        yield history, GitHubSource(GitHubClient(http, token=fake.token), OWNER_REPO, "main"), fake


async def test_a_commit_lists_its_images_within_the_cap(repo_source) -> None:
    history, source, fake = repo_source
    first = history.commits[0]
    with capture_logs() as logs:
        tree = await source.fetch_all(first)
    assert len(tree.files) == 15 and "README.md" not in tree.files
    assert set(tree.assets) == PRESENT
    assert too_large(logs) == {HUGE}
    if fake is not None:  # the tarball holds every byte already
        assert tree.assets[DIAGRAM] == png(1) and tree.assets[FIGURE] == SVG
        assert tree.assets[AT_THE_CAP] == b"G" * MAX_ASSET_BYTES
    else:  # git reads an image's blob only when the content embeds it
        assert set(tree.assets.values()) == {None}
    read = await source.read_assets(first, [DIAGRAM, FIGURE, HUGE, "Lenses/images/nope.png"])
    assert read == {DIAGRAM: png(1), FIGURE: SVG}


async def test_changes_carry_the_bytes_of_changed_images(repo_source) -> None:
    history, source, fake = repo_source
    first, second = history.commits
    with capture_logs() as logs:
        changes = await source.changes(first, second)
    assert changes is not None
    assert [c.path for c in changes if c.text is not None] == []  # no content file changed
    if fake is None:  # a local checkout: reading an image costs nothing
        assert {c for c in changes if c.text is None} == EXPECTED_CHANGES
        assert too_large(logs) == {PHOTO}
    else:
        # GitHub: a changed image is read only once the content turns out to embed it,
        # so a vault's other pictures cost no request (the cap applies when it is read).
        assert {c for c in changes if c.text is None} == {
            Change(DIAGRAM, None, unread=True),
            Change("Lenses/images/new.webp", None, unread=True),
            Change(PHOTO, None, unread=True),
            Change(UNUSED, None),
            Change(FIGURE, None),
            Change("modules/figures/figure.svg", None, unread=True),
        }
        assert [r for r in fake.requests if "/contents/" in r] == []
    assert await source.read_assets(second, [DIAGRAM, UNUSED, PHOTO]) == {DIAGRAM: png(5)}


async def test_github_stops_downloading_an_image_over_the_cap() -> None:
    chunks_sent = 0

    async def body():
        nonlocal chunks_sent
        for _ in range(10):
            chunks_sent += 1
            yield b"x" * 1_000_000

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept"] == "application/vnd.github.raw+json"
        if request.url.path.endswith("/small.png"):
            return httpx.Response(200, content=png(1))
        return httpx.Response(200, content=body())  # streamed, no Content-Length

    async with httpx.AsyncClient(transport=httpx.MockTransport(checked(handler))) as http:
        github = GitHubClient(http)
        assert await github.file_bytes(OWNER_REPO, "big.png", "main", limit=MAX_ASSET_BYTES) is None
        assert chunks_sent == 6  # stopped just past the cap
        small = await github.file_bytes(OWNER_REPO, "small.png", "main", limit=MAX_ASSET_BYTES)
        assert small == png(1)

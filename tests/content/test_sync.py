from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lens.content.models import ContentSnapshot
from lens.content.service import get_snapshot_files, get_state, load_current, sync_content
from lens.content.sources import FolderSource, GitCheckoutSource, GitHubSource
from lens.content.store import ContentStore
from lens.errors import IntegrationUnavailable
from lens.integrations.github import GitHubClient, RateLimited
from tests.content.fake_github import OWNER_REPO, FakeGitHub, History

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"
BROKEN_MODULE = "---\nslug: broken\ntitle: Broken\n---\n# Page: Oops\n## Text\ncontent::\nNo id.\n"
FIXED_MODULE = BROKEN_MODULE.replace(
    "# Page: Oops\n", "# Page: Oops\nid:: 9d2a4f60-0000-4000-8000-00000000000f\n"
).replace("---\nslug", "---\nid: 9d2a4f60-0000-4000-8000-00000000000e\nslug")


def build_history(root: Path) -> History:
    """Eleven commits: adds, edits, deletes, renames, a broken file and its fix."""
    h = History(root)
    h.copy_in(EXAMPLE)
    h.commit("1 add the course")
    welcome = (root / "modules/welcome.md").read_text()
    h.commit(
        "2 edit a page", write={"modules/welcome.md": welcome.replace("an hour", "ninety minutes")}
    )
    h.commit("3 add a draft", write={"modules/drafts/idea.md": "not ready"})
    h.commit("4 add a broken module", write={"modules/broken.md": BROKEN_MODULE})
    h.commit("5 fix it", write={"modules/broken.md": FIXED_MODULE})
    h.commit("6 rename it", rename=[("modules/broken.md", "modules/fixed.md")])
    stamps = root / "video_transcripts/useful-for-almost-any-goal.timestamps.json"
    h.commit(
        "7 retime",
        write={
            stamps.relative_to(root).as_posix(): stamps.read_text().replace(
                '"0:00.42"', '"0:00.40"'
            )
        },
    )
    h.commit("8 delete a module", delete=["modules/fixed.md"])
    lens = root / "Lenses/Measures that stop measuring.md"
    h.commit(
        "9 edit a lens",
        write={
            lens.relative_to(root).as_posix(): lens.read_text().replace("school or work", "school")
        },
    )
    h.commit(
        "10 add notes",
        write={
            "NOTES.md": "ignored",
            "modules/extra.md": FIXED_MODULE.replace("slug: broken", "slug: extra")
            .replace("0e\n", "1e\n")
            .replace("0f\n", "1f\n"),
        },
    )
    h.commit(
        "11 rename an article and its links",
        rename=[("articles/field-notes-on-specification-gaming.md", "articles/field-notes.md")],
        write={
            p.relative_to(root).as_posix(): p.read_text().replace(
                "articles/field-notes-on-specification-gaming", "articles/field-notes"
            )
            for p in [
                root / "Lenses/Field notes on specification gaming.md",
                root / "Lenses/Measures that stop measuring.md",
                root / "modules/reading-group.md",
            ]
        },
    )
    return h


@pytest.fixture
async def github(tmp_path: Path):
    history = build_history(tmp_path / "repo")
    fake = FakeGitHub(history)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        client = GitHubClient(http, token=fake.token)
        yield fake, GitHubSource(client, OWNER_REPO, "main")


async def test_incremental_syncs_match_full_syncs_along_the_history(db, github) -> None:
    fake, source = github
    assert len(fake.history.commits) >= 10
    for number, sha in enumerate(fake.history.commits, start=1):
        fake.head = sha
        fake.requests.clear()
        result = await sync_content(db, source=source)
        incremental_requests = list(fake.requests)
        assert result.changed and result.commit == sha
        assert result.full is (number == 1)
        state = await get_state(db)
        stored = await get_snapshot_files(db, snapshot_id=state.snapshot_id)
        expected = await source.fetch_all(sha)  # what a full sync reads at this commit
        assert stored == expected, f"after commit {number}"
        if number > 1:
            previous = fake.history.commits[number - 2]
            k = len(fake.compare(previous, sha)["files"])
            assert len(incremental_requests) <= k + 3, incremental_requests
            assert not any("tarball" in r for r in incremental_requests)
    snapshots = await db.scalar(select(func.count()).select_from(ContentSnapshot))
    assert snapshots == 3  # older ones are pruned


async def test_broken_file_keeps_the_rest_and_is_reported(db, github) -> None:
    fake, source = github
    fake.head = fake.history.commits[3]  # "add a broken module"
    result = await sync_content(db, source=source)
    assert result.invalid == 1
    _, _, content = await load_current(db)
    assert "modules/broken.md" not in content.modules
    assert len(content.modules) == 5
    assert [p.message for p in content.problems["modules/broken.md"]] == [
        "Missing required field: id",
        "Missing required field: id::",
    ]


async def test_nothing_to_do_when_the_head_has_not_moved(db, github) -> None:
    fake, source = github
    fake.head = fake.history.commits[0]
    await sync_content(db, source=source)
    fake.requests.clear()
    result = await sync_content(db, source=source)
    assert not result.changed
    assert len(fake.requests) == 1  # just the head lookup


async def test_rate_limit_keeps_the_last_snapshot(db, github) -> None:
    fake, source = github
    fake.head = fake.history.commits[0]
    await sync_content(db, source=source)
    fake.head = fake.history.commits[1]
    fake.fail_with = httpx.Response(
        403,
        json={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2000000000"},
    )
    with pytest.raises(RateLimited) as caught:
        async with db.begin_nested():
            await sync_content(db, source=source)
    assert caught.value.retry_at == 2000000000
    state = await get_state(db)
    snapshot = await db.get(ContentSnapshot, state.snapshot_id)
    assert snapshot.commit_sha == fake.history.commits[0]


async def test_server_errors_are_retryable(github) -> None:
    fake, source = github
    fake.head = "x"
    fake.fail_with = httpx.Response(502, text="bad gateway")
    with pytest.raises(IntegrationUnavailable):
        await source.head()


async def test_truncated_compare_falls_back_to_a_full_sync(db, github, monkeypatch) -> None:
    fake, source = github
    fake.head = fake.history.commits[0]
    await sync_content(db, source=source)
    fake.head = fake.history.commits[1]
    monkeypatch.setattr("lens.integrations.github.COMPARE_FILE_LIMIT", 1)
    result = await sync_content(db, source=source)
    assert result.full and result.changed


async def test_folder_source(db, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "course"
    shutil.copytree(EXAMPLE, root)
    source = FolderSource(root)
    first = await sync_content(db, source=source)
    assert first.changed and first.files == 15 and first.invalid == 0
    assert not (await sync_content(db, source=source)).changed
    (root / "modules" / "welcome.md").write_text("broken")
    again = await sync_content(db, source=source)
    assert again.changed and again.invalid == 1


async def test_git_checkout_source_reads_a_ref_incrementally(db, tmp_path: Path) -> None:
    history = build_history(tmp_path / "repo")
    git_source = GitCheckoutSource(history.root, history.commits[4])
    await sync_content(db, source=git_source)
    git_source.ref = history.commits[-1]
    result = await sync_content(db, source=git_source)
    assert not result.full
    state = await get_state(db)
    stored = await get_snapshot_files(db, snapshot_id=state.snapshot_id)
    assert stored == await git_source.fetch_all(history.commits[-1])
    assert "articles/field-notes.md" in stored


async def test_concurrent_syncs_do_not_overlap(committing_sessionmaker, github) -> None:
    import asyncio

    fake, source = github
    fake.head = fake.history.commits[0]

    async def one() -> bool:
        async with committing_sessionmaker() as session:
            result = await sync_content(session, source=source)
            await session.commit()
            return result.changed

    results = await asyncio.gather(one(), one())
    assert sorted(results) == [False, True]  # the second waited, then had nothing to do
    async with committing_sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ContentSnapshot)) == 1


async def test_store_reloads_when_the_version_changes(committing_sessionmaker, github) -> None:
    import asyncio

    fake, source = github
    store = ContentStore(committing_sessionmaker, poll_seconds=0.05)
    await store.refresh()
    assert store.content.modules == {}
    store.start()
    try:
        fake.head = fake.history.commits[0]
        async with committing_sessionmaker() as session:
            await sync_content(session, source=source)
            await session.commit()
        for _ in range(100):
            if store.content.modules:
                break
            await asyncio.sleep(0.05)
        assert len(store.content.modules) == 5
        assert store.snapshot is not None and store.snapshot.commit_sha == fake.head
    finally:
        await store.stop()

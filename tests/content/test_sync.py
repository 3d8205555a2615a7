from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select
from structlog.testing import capture_logs

from lens.content.files import MAX_ASSET_BYTES, is_asset
from lens.content.models import ContentAsset, ContentSnapshot
from lens.content.parsing import file_kind
from lens.content.service import (
    get_asset_data,
    get_asset_hash,
    get_snapshot_assets,
    get_snapshot_files,
    get_state,
    load_current,
    sync_content,
)
from lens.content.sources import (
    Change,
    ContentSource,
    FolderSource,
    GitCheckoutSource,
    GitHubSource,
    Tree,
)
from lens.content.store import ContentStore
from lens.errors import IntegrationUnavailable
from lens.integrations.github import GitHubClient, RateLimited
from tests.content.course_images import (
    ARTICLE,
    DIAGRAM,
    FIGURE,
    SVG,
    UNUSED,
    png,
    repository,
    require_embeds,
    write,
)
from tests.content.fake_github import OWNER_REPO, FakeGitHub, History

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"
BROKEN_MODULE = "---\nslug: broken\n---\n# Page: Oops\n## Text\ncontent::\nNo title.\n"
FIXED_MODULE = BROKEN_MODULE.replace(
    "# Page: Oops\n", "# Page: Oops\nid:: 9d2a4f60-0000-4000-8000-00000000000f\n"
).replace(
    "---\nslug: broken", "---\nid: 9d2a4f60-0000-4000-8000-00000000000e\nslug: broken\ntitle: Fixed"
)


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
    stored_commit = None
    for number, sha in enumerate(fake.history.commits, start=1):
        fake.head = sha
        fake.requests.clear()
        result = await sync_content(db, source=source)
        incremental_requests = list(fake.requests)
        assert result.commit == sha
        # Commit 3 adds only a draft: the content is the same, so no new snapshot.
        assert result.changed is (number != 3), f"commit {number}"
        assert result.full is (number == 1)
        state = await get_state(db)
        snapshot = await db.get(ContentSnapshot, state.snapshot_id)
        stored = await get_snapshot_files(db, snapshot_id=state.snapshot_id)
        expected = (await source.fetch_all(sha)).files  # what a full sync reads at this commit
        assert stored == expected, f"after commit {number}"
        if stored_commit is not None:
            # Compared from the stored snapshot's commit (commit 4 from commit 2).
            assert (
                f"GET /repos/{OWNER_REPO}/compare/{stored_commit}...{sha}" in incremental_requests
            )
            k = len(fake.compare(stored_commit, sha)["files"])
            assert len(incremental_requests) <= k + 3, incremental_requests
            assert not any("tarball" in r for r in incremental_requests)
        stored_commit = snapshot.commit_sha
        assert stored_commit == (fake.history.commits[1] if number == 3 else sha)
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
    errors = [p for p in content.problems["modules/broken.md"] if p.is_error]
    assert len(errors) == 1 and "title" in errors[0].message


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
    fake.rate_limit("primary", reset=2000000000)
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
    fake.fail_with = httpx.Response(503, json={"message": "Service Unavailable"})
    with pytest.raises(IntegrationUnavailable):
        await source.head()


def full_reads(logs: list[dict]) -> list[str]:
    return [e["reason"] for e in logs if e["event"] == "content.sync.full_read"]


async def _synced_at(db, source, fake, sha: str) -> None:
    fake.head = sha
    await sync_content(db, source=source)
    fake.requests.clear()


async def _stored(db) -> dict[str, str]:
    return await get_snapshot_files(db, snapshot_id=(await get_state(db)).snapshot_id)


async def test_a_change_of_more_files_than_compare_lists_is_read_whole(db, github) -> None:
    fake, source = github
    await _synced_at(db, source, fake, fake.history.commits[-1])
    welcome = (fake.history.root / "modules/welcome.md").read_text()
    # 300 notes sort before modules/: GitHub's list of 300 ends before the module.
    fake.head = fake.history.commit(
        "many notes and a module",
        write={
            **{f"attachments/{n:03}.txt": f"note {n}" for n in range(300)},
            "modules/welcome.md": welcome.replace("ninety minutes", "two hours"),
        },
    )
    assert "modules/welcome.md" not in {
        f["filename"] for f in fake.compare(*fake.history.commits[-2:])["files"]
    }
    with capture_logs() as logs:
        result = await sync_content(db, source=source)
    assert result.changed and result.full
    assert "two hours" in (await _stored(db))["modules/welcome.md"]
    assert full_reads(logs) == ["truncated"]
    assert any("/tarball/" in r for r in fake.requests)


async def test_a_force_push_is_read_whole(db, github) -> None:
    fake, source = github
    commits = list(fake.history.commits)
    await _synced_at(db, source, fake, commits[-1])  # "11 rename an article"
    # Rewritten from commit 9: commits 10 and 11 are gone, another change replaces them.
    fake.history.reset(commits[8])
    fake.head = fake.history.commit("10' a note", write={"modules/drafts/later.md": "x"})
    assert fake.compare(commits[10], fake.head)["status"] == "diverged"
    with capture_logs() as logs:
        result = await sync_content(db, source=source)
    assert result.changed and result.full
    stored = await _stored(db)
    assert stored == (await source.fetch_all(fake.head)).files
    assert "modules/extra.md" not in stored  # added by the lost commit 10
    assert "articles/field-notes-on-specification-gaming.md" in stored  # renamed by 11
    assert full_reads(logs) == ["diverged"]


async def test_a_branch_moved_back_is_read_whole(db, github) -> None:
    fake, source = github
    commits = fake.history.commits
    await _synced_at(db, source, fake, commits[-1])
    fake.history.reset(commits[7])  # back to "8 delete a module"
    fake.head = commits[7]
    with capture_logs() as logs:
        result = await sync_content(db, source=source)
    assert result.changed and result.full
    assert await _stored(db) == (await source.fetch_all(commits[7])).files
    assert full_reads(logs) == ["behind"]


async def test_a_snapshot_commit_github_lost_is_read_whole(db, github) -> None:
    fake, source = github
    commits = list(fake.history.commits)
    await _synced_at(db, source, fake, commits[-1])
    fake.history.reset(commits[8])
    fake.head = fake.history.commit("10'", write={"modules/drafts/later.md": "x"})
    fake.history.forget_unreachable()  # commits 10 and 11 are gone from the repository
    with capture_logs() as logs:
        result = await sync_content(db, source=source)
    assert result.changed and result.full
    assert await _stored(db) == (await source.fetch_all(fake.head)).files
    assert full_reads(logs) == ["base_not_found"]
    assert f"GET /repos/{OWNER_REPO}/compare/{commits[-1]}...{fake.head}" in fake.requests


@pytest.mark.parametrize(
    "kind", ["secondary", "secondary-retry-after", "secondary-429", "primary", "primary-429"]
)
async def test_a_rate_limited_compare_is_retried_not_replaced_by_a_full_read(
    db, github, kind
) -> None:
    fake, source = github
    commits = fake.history.commits
    await _synced_at(db, source, fake, commits[0])
    fake.head = commits[1]
    fake.rate_limit(kind, on="/compare/")
    with capture_logs() as logs, pytest.raises(RateLimited):
        async with db.begin_nested():
            await sync_content(db, source=source)
    assert not any("/tarball/" in r for r in fake.requests)  # the same limit would hit it
    assert full_reads(logs) == []
    assert (await _current(db)).commit_sha == commits[0]

    result = await sync_content(db, source=source)  # later, once the limit has passed
    assert result.changed and not result.full and result.commit == commits[1]


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
    assert stored == (await git_source.fetch_all(history.commits[-1])).files
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


# -- a push that changes no content ----------------------------------------------------


class MemorySource:
    """A fake source: each commit a whole repository held in memory ({path: text, or
    bytes for an image}), read through the same filters as the real sources."""

    def __init__(self) -> None:
        self.name = "memory:course"
        self.trees: dict[str, dict[str, str | bytes]] = {}
        self.commits: list[str] = []
        self.compared: list[tuple[str, str]] = []
        self.read: list[str] = []

    def push(
        self, write: dict[str, str | bytes] | None = None, delete: tuple[str, ...] = ()
    ) -> str:
        tree = dict(self.trees[self.commits[-1]]) if self.commits else {}
        for path in delete:
            del tree[path]
        tree.update(write or {})
        sha = hashlib.sha1(f"commit {len(self.commits)}".encode()).hexdigest()
        self.trees[sha] = tree
        self.commits.append(sha)
        return sha

    async def head(self) -> str:
        return self.commits[-1]

    async def fetch_all(self, commit: str) -> Tree:
        tree = self.trees[commit]
        return Tree(
            {p: c for p, c in tree.items() if isinstance(c, str) and file_kind(p)},
            {p: None for p, c in tree.items() if isinstance(c, bytes) and is_asset(p)},
        )

    async def changes(self, base: str, head: str) -> list[Change] | None:
        self.compared.append((base, head))
        old, new = self.trees[base], self.trees[head]
        changed = []
        for path in sorted(old.keys() | new.keys()):
            content = new.get(path)
            if old.get(path) == content or not (file_kind(path) or is_asset(path)):
                continue
            if content is None:
                changed.append(Change(path, None))
            elif isinstance(content, bytes):
                changed.append(Change(path, None, content))
            else:
                changed.append(Change(path, content))
        return changed

    async def read_assets(self, commit: str, paths: list[str]) -> dict[str, bytes]:
        self.read.extend(paths)
        tree = self.trees[commit]
        return {p: c for p in paths if isinstance(c := tree.get(p), bytes)}


@dataclass
class Repo:
    """One content repository behind a source, pushed to by the test."""

    source: ContentSource
    push: Callable[..., str]  # push(write={...}, delete=(...)) -> the new head
    compared_from: Callable[[str], bool]  # did the last sync compare from this commit?


@pytest.fixture(params=["memory", "github"])
async def repo(request, tmp_path: Path):
    if request.param == "memory":
        memory = MemorySource()
        yield Repo(
            memory,
            memory.push,
            lambda base: bool(memory.compared) and memory.compared[-1][0] == base,
        )
        return
    history = History(tmp_path / "repo")
    fake = FakeGitHub(history)

    def push(write=None, delete=()) -> str:
        fake.requests.clear()
        fake.head = history.commit(f"commit {len(history.commits) + 1}", write=write, delete=delete)
        return fake.head

    def compared_from(base: str) -> bool:
        prefix = f"GET /repos/{OWNER_REPO}/compare/{base}..."
        return any(r.startswith(prefix) for r in fake.requests)

    async with httpx.AsyncClient(transport=fake.transport()) as http:
        yield Repo(
            GitHubSource(GitHubClient(http, token=fake.token), OWNER_REPO, "main"),
            push,
            compared_from,
        )


async def _snapshots(db) -> int:
    return int(await db.scalar(select(func.count()).select_from(ContentSnapshot)))


async def _current(db) -> ContentSnapshot:
    state = await get_state(db)
    snapshot = await db.get(ContentSnapshot, state.snapshot_id)
    assert snapshot is not None
    return snapshot


async def test_a_push_that_changes_no_content_makes_no_snapshot(db, sessionmaker, repo) -> None:
    first = repo.push(repository())
    assert (await sync_content(db, source=repo.source)).changed
    store = ContentStore(sessionmaker)
    assert await store.refresh()
    state = await get_state(db)
    version, count, succeeded = state.version, await _snapshots(db), state.last_success_at
    state.last_error = "an earlier failure"
    await db.flush()

    second = repo.push(
        {
            "README.md": "# Course content\n\nNow with a longer introduction.\n",
            ".obsidian/workspace.json": '{"active": "modules/welcome.md"}',
            "modules/drafts/idea.md": "not ready",
        }
    )
    with capture_logs() as logs:
        result = await sync_content(db, source=repo.source)

    assert not result.changed
    assert (result.commit, result.unchanged_since) == (second, first)
    assert result.files == 15 and result.assets == 2  # what was compared
    assert repo.compared_from(first)
    state = await get_state(db)
    assert state.version == version
    assert await _snapshots(db) == count
    assert (await _current(db)).commit_sha == first  # it keeps its commit
    assert state.last_error is None and state.last_success_at == state.last_attempt_at
    assert state.last_success_at > succeeded
    assert [e for e in logs if e["event"] == "content.sync.unchanged"] == [
        {
            "event": "content.sync.unchanged",
            "log_level": "info",
            "commit": second[:12],
            "snapshot_commit": first[:12],
            "files": 15,
            "assets": 2,
            "full": False,
        }
    ]
    assert not await store.refresh()  # no process reloads


async def test_a_push_that_changes_a_module_makes_a_snapshot(db, sessionmaker, repo) -> None:
    files = repository()
    first = repo.push(files)
    await sync_content(db, source=repo.source)
    from lens.courses.pages import prerender

    store = ContentStore(sessionmaker, prepare=prerender)
    await store.refresh()
    version = (await get_state(db)).version

    def rendered() -> str:  # every section's HTML, rendered when the snapshot loaded
        return " ".join(b.html for blocks, _ in store.memo.values() for b in blocks)

    assert "an hour" in rendered() and "ninety minutes" not in rendered()

    welcome = str(files["modules/welcome.md"]).replace("an hour", "ninety minutes")
    second = repo.push({"modules/welcome.md": welcome})
    result = await sync_content(db, source=repo.source)

    assert result.changed and not result.full and result.unchanged_since is None
    assert repo.compared_from(first)
    assert (await get_state(db)).version == version + 1
    assert (await _current(db)).commit_sha == second
    assert await store.refresh()
    assert "ninety minutes" in str(store.content.modules["modules/welcome.md"])
    # The rendered fragments are the new snapshot's, made before it was served.
    assert "ninety minutes" in rendered() and "an hour" not in rendered()


async def test_a_change_after_a_skipped_push_arrives(db, repo) -> None:
    files = repository()
    first = repo.push(files)
    await sync_content(db, source=repo.source)
    welcome = str(files["modules/welcome.md"]).replace("an hour", "ninety minutes")
    repo.push({"modules/welcome.md": welcome})  # the module change...
    repo.push({"modules/welcome.md": files["modules/welcome.md"]})  # ...undone: a no-op
    assert not (await sync_content(db, source=repo.source)).changed
    repo.push({"README.md": "only the readme"})
    assert not (await sync_content(db, source=repo.source)).changed

    third = repo.push({"modules/welcome.md": welcome})
    result = await sync_content(db, source=repo.source)

    assert result.changed and not result.full
    assert repo.compared_from(first)  # from the snapshot's commit, not the skipped ones
    snapshot = await _current(db)
    assert snapshot.commit_sha == third
    stored = await get_snapshot_files(db, snapshot_id=snapshot.id)
    assert stored == (await repo.source.fetch_all(third)).files
    assert "ninety minutes" in stored["modules/welcome.md"]


# -- images and the no-op rule -----------------------------------------------------------


async def test_only_embedded_images_are_kept_and_reach_the_parser(db, repo) -> None:
    used = require_embeds()
    repo.push(repository())
    result = await sync_content(db, source=repo.source)
    assert result.assets == 2
    snapshot = await _current(db)
    listed = await get_snapshot_assets(db, snapshot_id=snapshot.id)
    # Every image is listed (the next sync must know it exists); only embedded ones
    # keep bytes. The dot-folder's image is not there at all.
    assert set(listed) == {DIAGRAM, FIGURE, UNUSED}
    assert {p for p, sha in listed.items() if sha} == used == {DIAGRAM, FIGURE}
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=DIAGRAM) == png(1)
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=FIGURE) == SVG
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=UNUSED) is None
    assert await get_asset_hash(db, snapshot_id=snapshot.id, path=DIAGRAM) == (
        hashlib.sha256(png(1)).hexdigest()
    )
    _, _, content = await load_current(db)
    assert content.assets_used == used
    assert not any(p.rule == "embed.missing" for ps in content.problems.values() for p in ps)


async def test_an_unreferenced_image_change_makes_no_snapshot(db, repo) -> None:
    require_embeds()
    first = repo.push(repository())
    await sync_content(db, source=repo.source)
    version = (await get_state(db)).version
    repo.push({UNUSED: png(3), "Lenses/images/another.png": png(4)})
    result = await sync_content(db, source=repo.source)
    assert not result.changed and result.unchanged_since == first
    assert (await get_state(db)).version == version


async def test_a_referenced_image_change_makes_a_snapshot(db, repo) -> None:
    require_embeds()
    repo.push(repository())
    await sync_content(db, source=repo.source)
    version = (await get_state(db)).version
    second = repo.push({DIAGRAM: png(5)})
    result = await sync_content(db, source=repo.source)
    assert result.changed and not result.full
    assert (await get_state(db)).version == version + 1
    snapshot = await _current(db)
    assert snapshot.commit_sha == second
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=DIAGRAM) == png(5)
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=FIGURE) == SVG  # copied


async def test_a_rate_limited_image_read_is_retried_not_left_out(db, tmp_path: Path) -> None:
    require_embeds()
    history = History(tmp_path / "repo")
    fake = FakeGitHub(history)
    fake.head = history.commit("1", write=repository())
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        source = GitHubSource(GitHubClient(http, token=fake.token), OWNER_REPO, "main")
        await sync_content(db, source=source)
        first = (await _current(db)).commit_sha
        fake.head = history.commit("2", write={DIAGRAM: png(5)})
        fake.rate_limit("secondary", on="/contents/")
        with pytest.raises(RateLimited):
            async with db.begin_nested():
                await sync_content(db, source=source)
        assert (await _current(db)).commit_sha == first  # not a snapshot without the image

        result = await sync_content(db, source=source)
    assert result.changed and result.assets == 2
    snapshot = await _current(db)
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=DIAGRAM) == png(5)


async def test_an_image_embedded_later_is_read_then(db, repo) -> None:
    require_embeds()
    files = repository()
    repo.push(files)
    await sync_content(db, source=repo.source)
    module = "modules/welcome.md"
    text = str(files[module]).replace(
        "at the end of the course.\n", "at the end of the course.\n![[unused.png]]\n"
    )
    assert text != files[module]
    repo.push({module: text})
    result = await sync_content(db, source=repo.source)
    assert result.changed and not result.full and result.assets == 3
    snapshot = await _current(db)
    assert await get_asset_data(db, snapshot_id=snapshot.id, path=UNUSED) == png(2)


async def test_a_removed_embedded_image_is_reported_missing(db, repo) -> None:
    require_embeds()
    repo.push(repository())
    await sync_content(db, source=repo.source)
    repo.push(delete=(DIAGRAM,))
    result = await sync_content(db, source=repo.source)
    assert result.changed and result.assets == 1
    _, _, content = await load_current(db)
    assert DIAGRAM not in content.assets_used
    assert [p.rule for p in content.problems[ARTICLE]] == ["embed.missing"]


async def test_an_embedded_image_over_the_cap_is_missing(db, tmp_path: Path) -> None:
    require_embeds()
    root = tmp_path / "course"
    write(root, {**repository(), DIAGRAM: b"\x89PNG" + b"\0" * MAX_ASSET_BYTES})
    with capture_logs() as logs:
        result = await sync_content(db, source=FolderSource(root))
    assert result.changed and result.assets == 1  # the figure only
    assert [(e["event"], e["path"]) for e in logs if "too_large" in e["event"]] == [
        ("content.asset.too_large", DIAGRAM)
    ]
    _, _, content = await load_current(db)
    assert content.assets_used == {FIGURE}
    assert [p.rule for p in content.problems[ARTICLE]] == ["embed.missing"]


async def test_a_snapshot_from_before_images_is_read_again_in_full(db, repo) -> None:
    require_embeds()
    first = repo.push(repository())
    await sync_content(db, source=repo.source)
    old = await _current(db)
    # What migration 0012 leaves behind: no images listed, and the snapshot says so.
    await db.execute(delete(ContentAsset).where(ContentAsset.snapshot_id == old.id))
    old.assets_listed = False
    await db.flush()

    result = await sync_content(db, source=repo.source)  # the head has not moved
    assert result.changed and result.full and result.assets == 2
    new = await _current(db)
    assert new.id != old.id and new.assets_listed and new.commit_sha == first
    assert set(await get_snapshot_assets(db, snapshot_id=new.id)) == {DIAGRAM, FIGURE, UNUSED}
    assert not (await sync_content(db, source=repo.source)).changed


async def test_pruned_snapshots_take_their_images_along(db, repo) -> None:
    require_embeds()
    repo.push(repository())
    await sync_content(db, source=repo.source)
    for version in range(3, 7):
        repo.push({DIAGRAM: png(version)})
        assert (await sync_content(db, source=repo.source)).changed
    kept = set(await db.scalars(select(ContentSnapshot.id)))
    assert len(kept) == 3
    owners = set(await db.scalars(select(ContentAsset.snapshot_id).distinct()))
    assert owners == kept

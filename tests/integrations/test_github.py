"""The GitHub client against the fake GitHub: rate limits as GitHub documents them, and
compare answers whose file list cannot be trusted."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.github import GitHubClient, RateLimited
from tests.content.fake_github import OWNER_REPO, FakeGitHub, History, error


@pytest.fixture
async def github(tmp_path: Path):
    history = History(tmp_path / "repo")
    history.commit("1", write={"modules/a.md": "one"})
    history.commit("2", write={"modules/a.md": "two"})
    fake = FakeGitHub(history, head=history.commits[-1])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        yield fake, GitHubClient(http, token=fake.token)


# GitHub's docs (tests/contracts/github/FACTS.md): 403 or 429; wait `retry-after` seconds
# when present; else until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0; else
# (a secondary limit) at least one minute.
@pytest.mark.parametrize(
    "kind,wait,secondary",
    [
        ("primary", "reset", False),
        ("primary-429", "reset", False),
        ("secondary", 60, True),  # neither header: before, a permanent refusal
        ("secondary-retry-after", 30, True),
        ("secondary-429", 30, True),
    ],
)
@pytest.mark.parametrize("call", ["head", "compare", "file", "image", "tarball"])
async def test_rate_limits_are_recognised_as_github_documents_them(
    github, kind, wait, secondary, call
) -> None:
    fake, client = github
    first, second = fake.history.commits
    reset = int(time.time()) + 1234
    fake.rate_limit(kind, reset=reset)
    calls = {
        "head": lambda: client.head_commit(OWNER_REPO, "main"),
        "compare": lambda: client.compare(OWNER_REPO, first, second),
        "file": lambda: client.file_text(OWNER_REPO, "modules/a.md", second),
        "image": lambda: client.file_bytes(OWNER_REPO, "modules/a.md", second, limit=10),
        "tarball": lambda: client.tarball(OWNER_REPO, second),
    }
    before = time.time()
    with pytest.raises(RateLimited) as caught:
        await calls[call]()
    expected = reset if wait == "reset" else before + wait
    assert expected - 2 <= caught.value.retry_at <= expected + 2
    assert caught.value.secondary is secondary
    assert ("secondary" in str(caught.value)) is secondary
    # The limit has passed: the same call works.
    assert await calls[call]() is not None


async def test_a_403_that_is_no_rate_limit_is_a_refusal(github) -> None:
    fake, client = github
    fake.fail_with = error(403, "Resource not accessible by personal access token")
    with pytest.raises(IntegrationRejected, match="not accessible") as caught:
        await client.file_text(OWNER_REPO, "modules/a.md", "main")
    assert not isinstance(caught.value, IntegrationUnavailable)


async def test_server_errors_are_worth_retrying(github) -> None:
    fake, client = github
    fake.fail_with = httpx.Response(503, json={"message": "Service Unavailable"})
    with pytest.raises(IntegrationUnavailable) as caught:
        await client.compare(OWNER_REPO, *fake.history.commits)
    assert not isinstance(caught.value, RateLimited)


async def test_compare_lists_what_changed_when_the_base_is_an_ancestor(github) -> None:
    fake, client = github
    first, second = fake.history.commits
    comparison = await client.compare(OWNER_REPO, first, second)
    assert comparison.status == "ahead" and comparison.reason is None
    assert [(f.path, f.status) for f in comparison.files or []] == [("modules/a.md", "modified")]
    assert fake.requests == [f"GET /repos/{OWNER_REPO}/compare/{first}...{second}"]


async def test_compare_behind_or_diverged_asks_for_a_full_read(github) -> None:
    fake, client = github
    first, second = fake.history.commits
    behind = await client.compare(OWNER_REPO, second, first)  # the branch moved back
    assert (behind.files, behind.reason, behind.status) == (None, "behind", "behind")

    fake.history.reset(first)
    rewritten = fake.history.commit("2'", write={"modules/b.md": "other"})  # a force-push
    diverged = await client.compare(OWNER_REPO, second, rewritten)
    assert (diverged.files, diverged.reason) == (None, "diverged")
    # GitHub lists the changes since the merge base: modules/a.md's change on the old
    # branch, which the new head does not have, is not in the list at all.
    listed = [f["filename"] for f in fake.compare(second, rewritten)["files"]]
    assert listed == ["modules/b.md"]


async def test_compare_from_a_commit_github_no_longer_has_asks_for_a_full_read(github) -> None:
    fake, client = github
    first, second = fake.history.commits
    fake.history.reset(first)
    fake.history.forget_unreachable()
    gone = await client.compare(OWNER_REPO, second, first)
    assert (gone.files, gone.reason) == (None, "base_not_found")


@pytest.mark.parametrize("changed,truncated", [(299, False), (300, True), (340, True)])
async def test_compare_lists_at_most_300_files(github, changed, truncated) -> None:
    fake, client = github
    first = fake.history.commits[-1]
    head = fake.history.commit(
        "many", write={f"notes/{n:03}.txt": f"note {n}" for n in range(changed)}
    )
    comparison = await client.compare(OWNER_REPO, first, head)
    assert len(fake.compare(first, head)["files"]) == min(changed, 300)
    if truncated:
        assert (comparison.files, comparison.reason) == (None, "truncated")
    else:
        assert comparison.files is not None and len(comparison.files) == changed

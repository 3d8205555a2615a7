from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from lens.app import create_app
from lens.content.models import ContentSnapshot
from lens.content.service import get_snapshot_files, get_state
from lens.jobs.models import Job
from lens.jobs.runner import JobRunner
from tests.content.fake_github import OWNER_REPO, FakeGitHub
from tests.content.github_contract import check_push_delivery
from tests.content.test_sync import build_history
from tests.contracts.validator import VIOLATIONS, ContractViolation

SECRET = "webhook-secret-for-tests"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def site(tmp_path: Path, database_url, sessionmaker, make_settings):
    fake = FakeGitHub(build_history(tmp_path / "repo"))
    fake.head = fake.history.commits[0]
    settings = make_settings(
        DATABASE_URL=database_url,
        LENS_RUN_WORKER="false",
        CONTENT_REPO=OWNER_REPO,
        GITHUB_TOKEN=fake.token,
        GITHUB_WEBHOOK_SECRET=SECRET,
    )
    app = create_app(
        settings, sessionmaker=sessionmaker, http_transport=fake.transport(), configure_logs=False
    )
    async with app.router.lifespan_context(app):
        lens = app.state.lens
        # The store's poller would share the test's one connection with the requests
        # (savepoints interleave); tests refresh it by hand (as in tests/conftest.py).
        await app.state.content.stop()
        runner = JobRunner(lens.sessionmaker, settings=settings, http=lens.http, poll_seconds=0.05)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as client:
            yield client, fake, runner, app.state


async def push(
    client: httpx.AsyncClient, fake: FakeGitHub, body: bytes, **headers: str
) -> httpx.Response:
    """Deliver a push as GitHub does; the delivery must fit the description's
    `x-webhooks.push` (headers and `webhook-push` body)."""
    sent = {**fake.delivery_headers("push"), "X-Hub-Signature-256": sign(body), **headers}
    check_push_delivery(sent, body)
    return await client.post("/api/content/webhook", content=body, headers=sent)


async def test_start_up_queues_a_sync_without_calling_github(site) -> None:
    client, fake, runner, state = site
    assert fake.requests == []  # start-up never waits on GitHub
    await runner.run_until_idle()
    assert await state.content.refresh()  # what every process's poller does within 2 s
    assert (await client.get("/course/intro-to-ai-safety")).text.count("Before meeting") == 2


async def test_valid_push_syncs(site, db) -> None:
    client, fake, runner, _ = site
    fake.head = fake.history.commits[1]
    response = await push(client, fake, fake.push_event(fake.head))
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "already queued")
    await runner.run_until_idle()
    state = await get_state(db)
    snapshot = await db.get(ContentSnapshot, state.snapshot_id)
    assert snapshot.commit_sha == fake.head


@pytest.mark.parametrize(
    "headers,status",
    [
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 401),
        ({"X-Hub-Signature-256": ""}, 401),
        ({"X-Hub-Signature-256": "sha1=abc"}, 401),
    ],
)
async def test_bad_or_missing_signature_syncs_nothing(site, db, headers, status) -> None:
    client, fake, runner, _ = site
    await runner.run_until_idle()  # the start-up sync
    fake.head = fake.history.commits[1]
    response = await push(client, fake, fake.push_event(fake.head), **headers)
    assert response.status_code == status
    assert response.json()["error"]["message"] == "Bad or missing X-Hub-Signature-256."
    await runner.run_until_idle()
    snapshot = await db.get(ContentSnapshot, (await get_state(db)).snapshot_id)
    assert snapshot.commit_sha == fake.history.commits[0]


async def test_other_branch_and_other_events_are_ignored(site, db) -> None:
    client, fake, runner, _ = site
    await runner.run_until_idle()
    fake.head = fake.history.commits[1]
    other_branch = await push(client, fake, fake.push_event(fake.head, branch="drafts"))
    assert other_branch.json()["status"] == "ignored"
    body = b'{"action": "opened"}'
    issue = await client.post(
        "/api/content/webhook",
        content=body,
        headers={**fake.delivery_headers("issues"), "X-Hub-Signature-256": sign(body)},
    )
    assert issue.status_code == 202 and issue.json()["status"] == "ignored"
    ping = await client.post(
        "/api/content/webhook",
        content=b"{}",
        headers={**fake.delivery_headers("ping"), "X-Hub-Signature-256": sign(b"{}")},
    )
    assert ping.status_code == 200
    await runner.run_until_idle()
    snapshot = await db.get(ContentSnapshot, (await get_state(db)).snapshot_id)
    assert snapshot.commit_sha == fake.history.commits[0]


async def test_without_a_secret_the_webhook_refuses(
    tmp_path, database_url, sessionmaker, make_settings
) -> None:
    app = create_app(
        make_settings(DATABASE_URL=database_url, LENS_RUN_WORKER="false"),
        sessionmaker=sessionmaker,
        configure_logs=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = b"{}"
            response = await client.post(
                "/api/content/webhook",
                content=body,
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body)},
            )
    assert response.status_code == 401
    assert "GITHUB_WEBHOOK_SECRET" in response.json()["error"]["message"]


async def test_a_burst_of_20_pushes_ends_in_one_consistent_snapshot(site, db) -> None:
    client, fake, runner, app_state = site
    commits = fake.history.commits
    for n in range(20):
        fake.head = commits[min(n, len(commits) - 1)]
        response = await push(client, fake, fake.push_event(fake.head))
        # A push of the last commit again may repeat a body already taken (200, ignored).
        expected = {202} if n < len(commits) else {200, 202}
        assert response.status_code in expected, n
    queued = list(await db.scalars(select(Job).where(Job.kind == "content.sync")))
    assert len(queued) == 1  # coalesced while waiting
    await runner.run_until_idle()
    state = await get_state(db)
    snapshot = await db.get(ContentSnapshot, state.snapshot_id)
    assert snapshot.commit_sha == commits[-1]
    stored = await get_snapshot_files(db, snapshot_id=snapshot.id)
    from lens.content.sources import GitHubSource
    from lens.integrations.github import GitHubClient

    full = await GitHubSource(
        GitHubClient(app_state.lens.http, token=fake.token), OWNER_REPO, "main"
    ).fetch_all(commits[-1])
    assert stored == full.files


def test_the_deliveries_here_are_pushes_as_github_describes_them(tmp_path: Path) -> None:
    fake = FakeGitHub(build_history(tmp_path / "repo"))
    first, second = fake.history.commits[:2]
    body = fake.push_event(second)
    payload = check_push_delivery(
        {**fake.delivery_headers(), "X-Hub-Signature-256": sign(body)}, body
    )
    assert (payload["ref"], payload["before"], payload["after"]) == (
        "refs/heads/main",
        first,
        second,
    )
    assert payload["repository"]["full_name"] == OWNER_REPO
    assert [c["id"] for c in payload["commits"]] == [second] == [payload["head_commit"]["id"]]
    assert payload["head_commit"]["modified"] == ["modules/welcome.md"]

    # What the tests sent before: three fields of the 12 the description requires.
    bare = json.dumps(
        {"ref": "refs/heads/main", "after": second, "repository": {"full_name": OWNER_REPO}}
    ).encode()
    with pytest.raises(ContractViolation, match="required property"):
        check_push_delivery({**fake.delivery_headers(), "X-Hub-Signature-256": sign(bare)}, bare)
    VIOLATIONS.clear()  # found on purpose


async def test_a_signed_body_that_is_not_a_json_object_is_refused(site, db) -> None:
    client, fake, _, _ = site
    for body in (b"[1, 2]", b'"push"', b"null"):
        sent = {**fake.delivery_headers("push"), "X-Hub-Signature-256": sign(body)}
        response = await client.post("/api/content/webhook", content=body, headers=sent)
        assert response.status_code == 400, body
        assert response.json()["reason"] == "body is not a JSON object"


async def test_a_replayed_delivery_is_taken_once(site, db) -> None:
    client, fake, runner, _ = site
    await runner.run_until_idle()
    fake.head = fake.history.commits[1]
    body = fake.push_event(fake.head)
    sent = {**fake.delivery_headers("push"), "X-Hub-Signature-256": sign(body)}
    first = await client.post("/api/content/webhook", content=body, headers=sent)
    assert first.status_code == 202 and first.json()["status"] == "queued"
    await runner.run_until_idle()
    again = await client.post("/api/content/webhook", content=body, headers=sent)
    assert again.json() == {"status": "ignored", "reason": "delivery already received"}
    assert await db.scalar(select(Job).where(Job.status == "queued")) is None
    # The delivery id is not signed: a replay under a new one is still the same push.
    relabelled = {**sent, "X-GitHub-Delivery": "another-guid"}
    again = await client.post("/api/content/webhook", content=body, headers=relabelled)
    assert again.json()["reason"] == "delivery already received"
    # The next push is a new body: taken.
    fake.head = fake.history.commits[2]
    assert (await push(client, fake, fake.push_event(fake.head))).json()["status"] == "queued"

"""Sending due deliveries: claim a batch, check each again, send, record the outcome.

Every worker process runs one DeliverySender. A batch is claimed by marking it
`sending` with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so two workers never
claim the same row); each delivery is then checked again (still true, still wanted,
not late), sent, and marked `sent` in its own short transaction right after the
provider accepted it. A sender that dies leaves its claimed rows to be taken again
when the lease runs out; the only message that can go out twice is one the provider
had accepted in the moment before the process died, and Discord messages carry a
nonce that Discord itself deduplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx
from sqlalchemy import ColumnElement, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.content.parsed import ContentSet
from lens.db.base import utcnow
from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.rest import DiscordRest
from lens.integrations.email.client import EmailMessage, EmailSender
from lens.logging import get_logger
from lens.notifications import (
    learner,  # noqa: F401 (registers its kinds' builders)
    membership,  # noqa: F401 (registers its kinds' builders)
)
from lens.notifications.context import Drop, Prepared, Site, preload, prepare
from lens.notifications.kinds import DISCORD, EMAIL
from lens.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from lens.notifications.render import render_discord, render_email
from lens.notifications.service import opted_out_many, wanted
from lens.settings import Settings
from lens.users.models import User

log = get_logger("lens.notifications")

MAX_ATTEMPTS = 6


class DiscordMessenger(Protocol):
    async def send_dm(
        self, discord_user_id: str, content: str, *, nonce: str | None = None
    ) -> str: ...


def backoff(attempt: int) -> timedelta:
    """30 s, 1 min, 2 min, ... up to 30 min before the next try."""
    return timedelta(seconds=min(1800, 30 * 2 ** max(0, attempt - 1)))


def nonce_for(delivery: Delivery) -> str:
    """Discord keeps one message per nonce (enforce_nonce): a resend after a crash
    is answered with the first message instead of a second one. At most 25 chars."""
    return hashlib.sha256(delivery.dedupe_key.encode()).hexdigest()[:25]


@dataclass
class Outcome:
    status: str
    outcome: str  # for the attempt row: sent, temporary, permanent, dropped
    error: str | None = None
    provider_id: str | None = None
    retry_in: timedelta | None = None


class DeliverySender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        site: Callable[[], Site],
        email: EmailSender,
        discord: DiscordMessenger | None,
        concurrency: int = 8,
        batch: int = 100,
        lease: timedelta = timedelta(minutes=2),
        poll_seconds: float = 2.0,
        worker_id: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.site = site
        self.email = email
        self.discord = discord
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- the loop --------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="lens-deliveries")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        log.info("notifications.sender.started", worker=self.worker_id)
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception as exc:  # the database away for a moment: try again soon
                log.error("notifications.sender.failed", error=f"{type(exc).__name__}: {exc}")
                sent = 0
            if sent < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_seconds)

    async def run_once(self) -> int:
        """Claim one batch of due deliveries and handle each; returns how many."""
        claimed = await self._claim()
        if not claimed:
            return 0
        # Slow providers (SMTP timeouts, Discord rate limits) can make a batch outlast
        # its lease: keep renewing it while we work, so no other sender takes it.
        renewing = asyncio.create_task(self._renew([d.id for d in claimed]))
        try:
            ready = await self._prepare_all(claimed, self.site())
            gate = asyncio.Semaphore(self.concurrency)

            async def one(delivery: Delivery, user: User, prepared: Prepared) -> None:
                async with gate:
                    if self._stopping.is_set():
                        return  # released below, untouched
                    await self._send(delivery, user, prepared)

            results = await asyncio.gather(*(one(*item) for item in ready), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    log.error("notifications.send.crashed", error=repr(result))
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self._release([d.id for d in claimed])
        return len(claimed)

    def _still_mine(self, ids: list[int]) -> tuple[ColumnElement[bool], ...]:
        """Rows of this batch this sender holds and has not finished."""
        return (
            Delivery.id.in_(ids),
            Delivery.locked_by == self.worker_id,
            Delivery.status == DeliveryStatus.SENDING,
        )

    async def _renew(self, ids: list[int]) -> None:
        interval = max(0.05, self.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.sessionmaker() as session, session.begin():
                    await session.execute(
                        update(Delivery)
                        .where(*self._still_mine(ids))
                        .values(locked_until=utcnow() + self.lease)
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # the lease may run out; another sender then takes over
                log.warning("notifications.lease.renew_failed", error=repr(exc))

    async def _release(self, ids: list[int]) -> None:
        """Rows of this batch not handled (stopping, or a crash mid-send) go back to
        waiting, without counting the attempt: nothing was sent for them."""
        try:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    update(Delivery)
                    .where(*self._still_mine(ids))
                    .values(
                        status=DeliveryStatus.PENDING,
                        locked_by=None,
                        locked_until=None,
                        attempts=Delivery.attempts - 1,
                    )
                    .execution_options(synchronize_session=False)
                )
        except Exception as exc:  # their lease runs out instead
            log.warning("notifications.release.failed", error=repr(exc))

    async def _claim(self) -> list[Delivery]:
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            due = (
                select(Delivery.id)
                .where(
                    or_(
                        and_(Delivery.status == DeliveryStatus.PENDING, Delivery.send_at <= now),
                        # Its sender died mid-batch: take it again.
                        and_(
                            Delivery.status == DeliveryStatus.SENDING,
                            Delivery.locked_until < now,
                        ),
                    )
                )
                .order_by(Delivery.send_at)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = await session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(due.scalar_subquery()))
                .values(
                    status=DeliveryStatus.SENDING,
                    locked_by=self.worker_id,
                    locked_until=now + self.lease,
                    attempts=Delivery.attempts + 1,
                    updated_at=now,
                )
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            claimed = list(rows)
            session.expunge_all()
        return sorted(claimed, key=lambda d: d.send_at)

    # -- one delivery -----------------------------------------------------------------

    async def _prepare_all(
        self, claimed: list[Delivery], site: Site
    ) -> list[tuple[Delivery, User, Prepared]]:
        """Check each delivery again and render its context, in one read-only session
        for the batch (its recipients, meetings and memberships loaded together)."""
        ready: list[tuple[Delivery, User, Prepared]] = []
        dropped: list[tuple[Delivery, Outcome]] = []
        async with self.sessionmaker() as session:
            users = await preload(session, claimed)
            optouts = await opted_out_many(session, user_ids=list(users))
            for delivery in claimed:
                try:
                    user = users.get(delivery.user_id)
                    if user is None:
                        raise Drop("account deleted")
                    reason = wanted(
                        user,
                        kind=delivery.kind,
                        channel=delivery.channel,
                        optouts=optouts.get(user.id, set()),
                        discord_on=self.discord is not None,
                    )
                    if reason:
                        raise Drop(reason)
                    ready.append((delivery, user, await prepare(session, delivery, user, site)))
                except Drop as exc:
                    dropped.append((delivery, Outcome(DeliveryStatus.DROPPED, "dropped", str(exc))))
                except Exception as exc:
                    log.exception("notifications.prepare.failed", delivery=delivery.id)
                    dropped.append((delivery, self._temporary(delivery, exc)))
        if dropped:
            async with self.sessionmaker() as session, session.begin():
                for delivery, outcome in dropped:
                    await self._record(session, delivery, outcome)
        return ready

    async def _send(self, delivery: Delivery, user: User, prepared: Prepared) -> None:
        # The outbox (development) writes in the session it is given; it commits with
        # the delivery's outcome. Real providers never touch it, so no connection is
        # held while they answer.
        async with self.sessionmaker() as session:
            try:
                provider_id: str | None = None
                if delivery.channel == EMAIL:
                    assert user.email is not None
                    rendered = render_email(
                        delivery.kind, prepared.context, language=prepared.language
                    )
                    await self.email.send(
                        session,
                        EmailMessage(
                            to=user.email,
                            subject=rendered.subject,
                            text=rendered.text,
                            html=rendered.html,
                            attachments=prepared.attachments,
                            # Names the delivery in the provider's logs, and the same
                            # Message-ID on a repeat after a crash lets mailboxes that
                            # deduplicate (Gmail does) show it once.
                            headers={
                                **prepared.headers,
                                "X-Lens-Delivery": nonce_for(delivery),
                                "Message-ID": f"<{nonce_for(delivery)}@{prepared.host}>",
                            },
                        ),
                    )
                elif delivery.channel == DISCORD:
                    assert self.discord is not None and user.discord_id is not None
                    text = render_discord(
                        delivery.kind, prepared.context, language=prepared.language
                    )
                    provider_id = await self.discord.send_dm(
                        user.discord_id, text, nonce=nonce_for(delivery)
                    )
                else:
                    raise IntegrationRejected(f"unknown channel {delivery.channel!r}")
            except IntegrationRejected as exc:
                outcome = Outcome(DeliveryStatus.FAILED, "permanent", str(exc))
            except (IntegrationUnavailable, httpx.TransportError) as exc:
                outcome = self._temporary(delivery, exc)
            except Exception as exc:
                log.exception("notifications.send.failed", delivery=delivery.id)
                outcome = self._temporary(delivery, exc)
            else:
                outcome = Outcome(DeliveryStatus.SENT, "sent", provider_id=provider_id)
            await self._record(session, delivery, outcome)
            await session.commit()

    def _temporary(self, delivery: Delivery, exc: BaseException) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        if delivery.attempts >= MAX_ATTEMPTS:
            return Outcome(DeliveryStatus.FAILED, "temporary", f"gave up: {error}")
        return Outcome(
            DeliveryStatus.PENDING, "temporary", error, retry_in=backoff(delivery.attempts)
        )

    async def _record(self, session: AsyncSession, delivery: Delivery, outcome: Outcome) -> None:
        now = utcnow()
        values: dict[str, object] = {
            "status": outcome.status,
            "locked_by": None,
            "locked_until": None,
            "updated_at": now,
            "last_error": outcome.error,
        }
        if outcome.status == DeliveryStatus.SENT:
            values |= {"sent_at": now, "provider_id": outcome.provider_id}
        if outcome.retry_in is not None:
            values["send_at"] = now + outcome.retry_in
        result = await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.locked_by == self.worker_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            # Our lease ran out and another sender took it over; its record counts.
            log.warning("notifications.lease.lost", delivery=delivery.id)
        await session.execute(
            insert(DeliveryAttempt).values(
                delivery_id=delivery.id,
                number=delivery.attempts,
                at=now,
                outcome=outcome.outcome,
                error=outcome.error,
            )
        )
        log.info(
            "notifications.delivery",
            delivery=delivery.id,
            kind=delivery.kind,
            channel=delivery.channel,
            outcome=outcome.outcome,
            error=outcome.error,
        )


def sender_from_settings(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    *,
    email: EmailSender,
    secret: str,
    content: Callable[[], ContentSet | None],
    discord: DiscordMessenger | None = None,
) -> DeliverySender:
    """The sender a worker process runs (web processes with the worker role too)."""
    if discord is None and settings.discord_bot_token:
        discord = DiscordRest(
            http, token=settings.discord_bot_token, base_url=settings.discord_api_base
        )
    return DeliverySender(
        sessionmaker,
        site=lambda: Site(
            base_url=settings.public_url,
            secret=secret,
            from_email=settings.from_email,
            content=content(),
            discord_server_id=settings.discord_server_id,
        ),
        email=email,
        discord=discord,
        concurrency=settings.delivery_concurrency,
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        poll_seconds=settings.delivery_poll_seconds,
    )

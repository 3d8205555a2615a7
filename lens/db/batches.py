"""Group commit: work submitted while a batch is being written goes in the next batch.

When hundreds of requests each need a short transaction at the same moment (a cohort
starting tutor replies together, their replies ending together), writing them one by one
costs a round trip, a pool connection and the ORM's set-up each, and they queue behind
each other. `Batches` runs one batch at a time per process: everything that arrives while
one is written waits and goes together in the next, so the batches grow with the load
and stay single items when it is quiet.

A batch starts once the loop has turned without a new item (`_settle`, SETTLE_SECONDS at
most): a burst of requests reaches the queue over tens of milliseconds while they are
read and routed, and a batch started with the first of them alone made the rest wait for
it and then go as a second batch, whose round trips queued behind the first batch's
requests on the event loop (200 tutor asks: a batch of 13 after one of 187 took 105 ms
instead of 30; bench/tutor.py). When it is quiet, one turn finds nothing new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from lens.logging import get_logger

log = get_logger("lens.db")

T = TypeVar("T")
R = TypeVar("R")

MOST = 500  # items in one batch at most
SETTLE_SECONDS = 0.05  # the longest a batch waits for a burst still arriving


class Batches(Generic[T, R]):
    """`run(items)` handles one batch and returns an outcome per item, in order: a
    result, or an exception for that item alone. An exception raised by `run` is every
    item's outcome. Items whose submitter went away (cancelled) meanwhile are handed to
    `abandoned` with their outcome."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[list[R | BaseException]]],
        *,
        most: int = MOST,
        abandoned: Callable[[T, R | BaseException], None] | None = None,
    ) -> None:
        self._run = run
        self._most = most
        self._abandoned = abandoned
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The outcome came, but the submitter was cancelled before it woke.
                self._hand_on(item, future.exception() or future.result())
            raise

    def _hand_on(self, item: T, outcome: R | BaseException) -> None:
        if self._abandoned is None:
            return
        try:
            self._abandoned(item, outcome)
        except Exception as exc:
            log.error("batches.abandoned_failed", error=repr(exc))

    async def _settle(self) -> None:
        """Let a burst that is still arriving join before a batch starts: while more
        items came with each turn of the event loop (requests of a burst still being read
        and routed), wait one more turn, for SETTLE_SECONDS at most. When it is quiet,
        one turn finds nothing new and the batch starts at once."""
        loop = asyncio.get_running_loop()
        until = loop.time() + SETTLE_SECONDS
        seen = 0
        while len(self._waiting) != seen and len(self._waiting) < self._most:
            seen = len(self._waiting)
            if loop.time() >= until:
                return
            await asyncio.sleep(0)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                await self._settle()
                batch = self._waiting[: self._most]
                del self._waiting[: self._most]
                try:
                    outcomes = await self._run([item for item, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
                except Exception as exc:
                    outcomes = [exc] * len(batch)
                for (item, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its submitter went away meanwhile
                        self._hand_on(item, outcome)
                    elif isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                batch = []
        finally:
            self._task = None
            for _, future in [*batch, *self._waiting]:  # when cancelled (the app stopping)
                if not future.done():
                    future.cancel()
            self._waiting.clear()

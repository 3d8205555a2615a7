"""lens.db.batches: one batch at a time, the rest waiting for the next; outcomes per item."""

from __future__ import annotations

import asyncio

import pytest

from lens.db.batches import Batches


async def test_items_arriving_during_a_batch_go_together_in_the_next() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        seen.append(items)
        await asyncio.sleep(0.01)
        return [ValueError(n) if n == 3 else n * 10 for n in items]

    batches: Batches[int, int] = Batches(run)
    first = asyncio.ensure_future(batches.submit(0))
    while not seen:  # the first batch is being written
        await asyncio.sleep(0)
    rest = asyncio.gather(*(batches.submit(n) for n in range(1, 6)), return_exceptions=True)
    out = [await first, *(await rest)]
    assert seen == [[0], [1, 2, 3, 4, 5]]
    assert out[:3] == [0, 10, 20] and isinstance(out[3], ValueError) and out[4:] == [40, 50]
    # Quiet again: the next item goes alone, at once.
    assert await batches.submit(7) == 70
    assert seen[-1] == [7]


async def test_a_failing_run_fails_its_items_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database is away")
        return items

    batches: Batches[int, int] = Batches(run)
    with pytest.raises(RuntimeError):
        await batches.submit(1)
    assert await batches.submit(2) == 2


async def test_a_submitter_that_went_away_gets_its_outcome_handed_on() -> None:
    gone: list[tuple[int, object]] = []
    release = asyncio.Event()

    async def run(items: list[int]) -> list[int | BaseException]:
        await release.wait()
        return items

    batches: Batches[int, int] = Batches(run, abandoned=lambda item, out: gone.append((item, out)))
    stays = asyncio.ensure_future(batches.submit(1))
    leaves = asyncio.ensure_future(batches.submit(2))
    await asyncio.sleep(0)
    leaves.cancel()
    release.set()
    assert await stays == 1
    await asyncio.sleep(0.01)
    assert gone == [(2, 2)]


async def test_an_outcome_set_just_as_its_submitter_is_cancelled_is_handed_on() -> None:
    """The batch resolves the item, and the submitter is cancelled before it wakes: the
    outcome (a budget hold, say) is not lost; `abandoned` gets it."""
    gone: list[tuple[int, object]] = []
    submitter: dict[str, asyncio.Task[int]] = {}

    async def run(items: list[int]) -> list[int | BaseException]:
        # Runs after the batch returns and resolves the item, before the submitter wakes.
        asyncio.get_running_loop().call_soon(submitter["task"].cancel)
        return items

    batches: Batches[int, int] = Batches(run, abandoned=lambda item, out: gone.append((item, out)))
    submitter["task"] = asyncio.ensure_future(batches.submit(9))
    with pytest.raises(asyncio.CancelledError):
        await submitter["task"]
    assert gone == [(9, 9)]


async def test_a_failing_abandoned_hook_does_not_lose_the_rest_of_the_batch() -> None:
    def broken(item: int, outcome: object) -> None:
        raise RuntimeError("the hook broke")

    release = asyncio.Event()

    async def run(items: list[int]) -> list[int | BaseException]:
        await release.wait()
        return items

    batches: Batches[int, int] = Batches(run, abandoned=broken)
    leaves = asyncio.ensure_future(batches.submit(1))
    stays = asyncio.ensure_future(batches.submit(2))
    await asyncio.sleep(0)
    leaves.cancel()
    release.set()
    assert await stays == 2


async def test_a_burst_still_arriving_goes_in_one_batch_not_its_first_item_alone() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        seen.append(items)
        return items

    batches: Batches[int, int] = Batches(run)

    async def arrives(n: int) -> int:
        for _ in range(n):  # each request a turn of the loop later: read, routed, checked
            await asyncio.sleep(0)
        return await batches.submit(n)

    assert await asyncio.gather(*(arrives(n) for n in range(30))) == list(range(30))
    assert seen == [list(range(30))]


async def test_a_batch_waits_for_a_burst_no_longer_than_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A burst that never stops (one more item seen at every turn of the loop): the batch
    # still starts once SETTLE_SECONDS are over.
    monkeypatch.setattr("lens.db.batches.SETTLE_SECONDS", 0.05)

    class Growing(list):  # type: ignore[type-arg]
        count = 0

        def __len__(self) -> int:
            self.count += 1
            return self.count

    batches: Batches[int, int] = Batches(lambda items: asyncio.sleep(0, items), most=10**9)
    batches._waiting = Growing()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(batches._settle(), 5)
    assert 0.05 <= loop.time() - started < 2

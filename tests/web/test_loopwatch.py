"""The event-loop stall watch: a call that holds the loop is reported with its stack;
awaiting is not a stall; and the app's hot paths hold the loop for no longer than the
watch's threshold (heavy work such as rendering runs in threads)."""

from __future__ import annotations

import asyncio
import time

from lens.web.loopwatch import LoopWatch


def _holds_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call, as a synchronous client or a big render is


async def test_a_blocking_call_is_reported_with_its_stack() -> None:
    watch = LoopWatch(threshold=0.1)
    await watch.start()
    try:
        await asyncio.sleep(0.05)
        before = watch.stalls  # a loaded machine (CI, 2 cores) may add one of its own
        _holds_the_loop(0.4)
        await asyncio.sleep(0.05)
        assert watch.stalls == before + 1
        assert 390 <= watch.longest_ms < 2000
        assert "_holds_the_loop" in watch.last_stack
    finally:
        await watch.stop()


async def test_a_stall_says_how_much_of_it_was_the_garbage_collector() -> None:
    import gc

    watch = LoopWatch(threshold=0.1)
    await watch.start()
    gc.disable()  # only the pass below, not one the test's own allocations start
    try:
        await asyncio.sleep(0.05)
        _holds_the_loop(0.3)
        await asyncio.sleep(0.05)
        assert watch.stalls == 1 and watch.last_gc_generation is None  # no GC in it
        gc.collect()  # a full pass, on the loop, inside the next stall
        _holds_the_loop(0.3)
        await asyncio.sleep(0.05)
        assert watch.stalls == 2
        # Recorded within the stall (how long it took depends on the process's heap).
        assert watch.last_gc_generation == 2 and watch.last_gc_ms >= 0
    finally:
        gc.enable()
        await watch.stop()
    assert watch._on_gc not in gc.callbacks


async def test_awaiting_is_no_stall() -> None:
    # A threshold well above what a busy test machine's scheduling can cause.
    watch = LoopWatch(threshold=0.15)
    await watch.start()
    try:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(time.sleep, 0.2)  # blocking, but off the loop
        assert watch.stalls == 0
    finally:
        await watch.stop()


async def test_the_app_starts_the_watch_when_asked(client_factory) -> None:
    async with client_factory(LENS_LOOP_STALL_MS="250") as client:
        watch = client.app.state.loopwatch
        assert watch.threshold == 0.25
        page = await client.get("/course/intro-to-ai-safety/welcome")
        assert page.status_code == 200
    async with client_factory() as client:
        assert not hasattr(client.app.state, "loopwatch")


async def test_a_stall_says_whether_one_call_or_a_busy_loop_held_it() -> None:
    # One blocking call: one callback all along. Many short callbacks ready together (a
    # burst of requests on a saturated loop): several, each brief.
    watch = LoopWatch(threshold=0.1)
    await watch.start()
    try:
        await asyncio.sleep(0.05)
        before = watch.stalls
        _holds_the_loop(0.4)
        await asyncio.sleep(0.05)
        assert watch.stalls == before + 1
        assert watch.last_callbacks == 1

        # The same inside a greenlet (how SQLAlchemy runs its work), whose frames do not
        # lead back to the loop's.
        from sqlalchemy.util import greenlet_spawn

        before = watch.stalls
        await greenlet_spawn(_holds_the_loop, 0.4)
        await asyncio.sleep(0.05)
        assert watch.stalls == before + 1
        assert watch.last_callbacks == 1

        loop = asyncio.get_running_loop()
        before = watch.stalls
        for _ in range(80):
            loop.call_soon(_holds_the_loop, 0.005)  # 80 x 5 ms, all in one round
        await asyncio.sleep(0.05)
        assert watch.stalls == before + 1
        assert watch.last_callbacks > 1
    finally:
        await watch.stop()

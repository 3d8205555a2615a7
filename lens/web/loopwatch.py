"""Event-loop stall watch: says when the loop was held up, and by what.

A task on the loop notes the time every `tick` seconds. A watchdog thread checks those
notes; when the loop has not ticked for `threshold` seconds it takes the loop thread's
stack at that moment (what is holding the loop: a blocking call, a long computation) and
logs `loop.stall` with how long the stall lasted once the loop ticks again, and whether
one callback held it all along (`cause=blocking`: a blocking call, a long computation)
or the loop was running many ready callbacks back to back (`cause=busy`: saturated, as
under a burst of requests), from the callback it finds running at each tick. Counts are
kept (`LoopWatch.stalls`, `LoopWatch.longest_ms`) for tests and benches.

On when LENS_LOOP_STALL_MS is set (e.g. 50): the benches set it and report the stalls;
tests use it to prove that heavy work runs off the loop. Cost when on: one wake-up of the
loop and of the thread every 10 ms.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import sys
import threading
import time
import traceback

from lens.logging import get_logger

log = get_logger("lens.web.loopwatch")


class LoopWatch:
    def __init__(self, *, threshold: float, tick: float = 0.01) -> None:
        self.threshold = threshold
        self.tick = tick
        self.stalls = 0
        self.longest_ms = 0.0
        self.last_stack = ""
        self.last_gc_ms = 0.0
        self.last_gc_generation: int | None = None
        self._last = time.monotonic()
        self._stalled_at: float | None = None
        self._stalled_since = 0.0
        self._stack = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread = 0
        # The garbage collector's passes on the loop thread: (ended at, generation, ms).
        self._collections: collections.deque[tuple[float, int, float]] = collections.deque(
            maxlen=64
        )
        self._gc_started = 0.0
        # During a stall, the callback the loop was running at each look (frame objects,
        # held so that a finished one's address is not reused by the next).
        self._held_by: list[object] = []
        self.last_callbacks = 0

    async def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._last = time.monotonic()
        self._task = asyncio.create_task(self._ticking(), name="loop-watch")
        self._thread = threading.Thread(target=self._watching, name="loop-watch", daemon=True)
        self._thread.start()
        gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            with self._lock:  # the watchdog sees the loop back and the stall ended together
                self._last = now
                stalled_at, self._stalled_at = self._stalled_at, None
            if stalled_at is not None:
                # From the last tick the watchdog saw (it may have read it just before a
                # tick it did not see: the stall then ended at that tick, and this is at
                # most one tick long).
                since = self._stalled_since
                lasted = (now - since) * 1000
                self.stalls += 1
                self.longest_ms = max(self.longest_ms, lasted)
                self.last_stack = self._stack
                collected = [(gen, ms) for ended, gen, ms in self._collections if ended >= since]
                # Time the garbage collector held the loop within the stall (then the
                # stack is wherever it happened to start).
                self.last_gc_ms = round(sum(ms for _, ms in collected), 1)
                self.last_gc_generation = max((gen for gen, _ in collected), default=None)
                # One callback all along: a blocking call or a long computation. Several: a
                # busy loop, running many ready callbacks back to back (saturated).
                held_by, self._held_by = self._held_by, []
                self.last_callbacks = len({id(frame) for frame in held_by})
                log.warning(
                    "loop.stall",
                    ms=round(lasted, 1),
                    callbacks=self.last_callbacks,
                    cause=(
                        "busy"
                        if self.last_callbacks > 1
                        else "blocking"
                        if self.last_callbacks
                        else "unknown"
                    ),
                    gc_ms=self.last_gc_ms,
                    gc_generation=self.last_gc_generation,
                    stack=self._stack,
                )

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if threading.get_ident() != self._loop_thread:
            return
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        else:
            self._collections.append(
                (now, info.get("generation", 0), (now - self._gc_started) * 1000)
            )

    def _watching(self) -> None:
        while not self._stop.wait(self.tick):
            last = self._last
            late = time.monotonic() - last
            if late <= self.threshold + self.tick:
                continue
            with self._lock:
                if self._last != last:
                    continue  # the loop ticked meanwhile: no stall (or it just ended)
                frame = sys._current_frames().get(self._loop_thread)
                if self._stalled_at is None:
                    self._stack = "".join(traceback.format_stack(frame, limit=12)) if frame else ""
                    self._stalled_since = last
                    self._stalled_at = time.monotonic()
                # Which callback holds the loop now.
                callback = _callback_frame(frame)
                if callback is not None and len(self._held_by) < 1000:
                    self._held_by.append(callback)


def _callback_frame(frame: object) -> object | None:
    """The frame of the callback the loop is running (the one asyncio's `Handle._run`
    called), from the loop thread's innermost frame. Inside a greenlet (SQLAlchemy runs
    its work in one per statement or session) the chain stops at the greenlet's own
    first frame: that one stands for the callback."""
    inner = outermost = None
    while frame is not None:
        code = frame.f_code  # type: ignore[attr-defined]
        if code.co_name == "_run" and code.co_filename.endswith(("asyncio/events.py",)):
            return inner
        inner = outermost = frame
        frame = frame.f_back  # type: ignore[attr-defined]
    return outermost

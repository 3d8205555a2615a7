"""Event-loop stall watch: says when the loop was held up, and by what.

A task on the loop notes the time every `tick` seconds. A watchdog thread checks those
notes; when the loop has not ticked for `threshold` seconds it takes the loop thread's
stack at that moment (what is holding the loop: a blocking call, a long computation) and
logs `loop.stall` with how long the stall lasted once the loop ticks again. Counts are
kept (`LoopWatch.stalls`, `LoopWatch.longest_ms`) for tests and benches.

On when LENS_LOOP_STALL_MS is set (e.g. 50): the benches set it and report the stalls;
tests use it to prove that heavy work runs off the loop. Cost when on: one wake-up of the
loop and of the thread every 10 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self._last = time.monotonic()
        self._stalled_at: float | None = None
        self._stack = ""
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread = 0

    async def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._last = time.monotonic()
        self._task = asyncio.create_task(self._ticking(), name="loop-watch")
        self._thread = threading.Thread(target=self._watching, name="loop-watch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
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
            stalled_at = self._stalled_at
            if stalled_at is not None:
                self._stalled_at = None
                lasted = (now - self._last) * 1000
                self.stalls += 1
                self.longest_ms = max(self.longest_ms, lasted)
                self.last_stack = self._stack
                log.warning("loop.stall", ms=round(lasted, 1), stack=self._stack)
            self._last = now

    def _watching(self) -> None:
        while not self._stop.wait(self.tick):
            late = time.monotonic() - self._last
            if late > self.threshold + self.tick and self._stalled_at is None:
                frame = sys._current_frames().get(self._loop_thread)
                self._stack = "".join(traceback.format_stack(frame, limit=12)) if frame else ""
                self._stalled_at = time.monotonic()

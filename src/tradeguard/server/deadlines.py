"""Deadlines for reading request bodies, kept by one watchdog task per event loop.

``asyncio.timeout()`` arms a loop timer per use; under uvloop arming and disarming one
costs more than the guard's whole ban-and-size check, and nearly every body has already
arrived when it is read. Here a read costs two dictionary operations; a watchdog wakes a
few times per timeout while reads are pending and cancels those past their deadline, which
then answer 408. Per event loop, because tasks may only be cancelled from their own loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Final

MAX_TICK: Final = 1.0  # the watchdog's period is a quarter of the timeout, at most this


class _LoopWatch:
    __slots__ = ("expired", "reads", "watchdog")

    def __init__(self) -> None:
        self.reads: dict[asyncio.Task[object], float] = {}
        self.expired: set[asyncio.Task[object]] = set()
        self.watchdog: asyncio.Task[None] | None = None


class BodyDeadlines:
    """``start()`` before reading a body, ``expired(task)`` when done (or cancelled)."""

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError("the body timeout must be positive")
        self.timeout = timeout
        self._tick = min(MAX_TICK, timeout / 4)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatch] = (
            weakref.WeakKeyDictionary()
        )

    def start(self) -> asyncio.Task[object]:
        """Give the current task ``timeout`` seconds from now; returns the task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("BodyDeadlines.start() outside a task")
        loop = task.get_loop()
        watch = self._loops.get(loop)
        if watch is None:
            watch = self._loops[loop] = _LoopWatch()
        watch.reads[task] = loop.time() + self.timeout
        if watch.watchdog is None or watch.watchdog.done():
            watch.watchdog = loop.create_task(self._watch(loop, watch))
        return task

    def finish(self, task: asyncio.Task[object]) -> bool:
        """Forget ``task``'s deadline; True if it passed (the watchdog cancelled the task,
        and that cancellation is withdrawn here: the caller answers 408 instead)."""
        watch = self._loops.get(task.get_loop())
        if watch is None:
            return False
        watch.reads.pop(task, None)
        if task in watch.expired:
            watch.expired.discard(task)
            task.uncancel()
            return True
        return False

    def expire(self, loop: asyncio.AbstractEventLoop, now: float) -> int:
        """Cancel the reads on ``loop`` whose deadline is ``now`` or earlier (call it on that
        loop); how many. The watchdog calls it with ``loop.time()``."""
        watch = self._loops.get(loop)
        if watch is None:
            return 0
        late = [task for task, deadline in watch.reads.items() if deadline <= now]
        for task in late:
            del watch.reads[task]
            watch.expired.add(task)
            task.cancel()
        return len(late)

    async def _watch(self, loop: asyncio.AbstractEventLoop, watch: _LoopWatch) -> None:
        while watch.reads:  # idle: stop; the next start() begins another
            await asyncio.sleep(self._tick)
            self.expire(loop, loop.time())

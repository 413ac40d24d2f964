"""Body-read deadlines: a late read is cancelled into a 408, a prompt one is untouched, and
nothing else (another task, a cancellation from elsewhere) is mistaken for a timeout."""

from __future__ import annotations

import asyncio

import pytest

from tradeguard.server.deadlines import BodyDeadlines


async def _read(deadlines: BodyDeadlines, arrived: asyncio.Event) -> str:
    """What the middleware does around a body read."""
    task = deadlines.start()
    try:
        await arrived.wait()
        return "body"
    except asyncio.CancelledError:
        if deadlines.finish(task):
            return "408"
        raise
    finally:
        deadlines.finish(task)


def test_a_read_past_its_deadline_answers_408_and_the_task_goes_on() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = BodyDeadlines(15.0)
        never = asyncio.Event()
        late = asyncio.create_task(_read(deadlines, never))
        await asyncio.sleep(0)  # the read has started
        assert deadlines.expire(loop, loop.time() + 14.0) == 0  # not yet
        assert deadlines.expire(loop, loop.time() + 15.5) == 1
        assert await late == "408"
        assert late.cancelling() == 0  # the cancellation was withdrawn, not left pending
        assert deadlines.expire(loop, loop.time() + 1e6) == 0  # forgotten

    asyncio.run(scenario())


def test_a_prompt_read_is_never_cancelled_and_leaves_nothing_behind() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = BodyDeadlines(15.0)
        arrived = asyncio.Event()
        arrived.set()
        assert [await _read(deadlines, arrived) for _ in range(3)] == ["body"] * 3
        assert deadlines.expire(loop, loop.time() + 1e6) == 0

    asyncio.run(scenario())


def test_only_the_late_read_is_cancelled_among_several() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = BodyDeadlines(15.0)
        never, soon = asyncio.Event(), asyncio.Event()
        late = asyncio.create_task(_read(deadlines, never))
        await asyncio.sleep(0)
        started = loop.time()
        while loop.time() == started:  # the monotonic clock ticks (no sleep needed)
            pass
        cutoff = started + 15.0  # past the first read's deadline, before the second's
        prompt = asyncio.create_task(_read(deadlines, soon))
        await asyncio.sleep(0)
        assert deadlines.expire(loop, cutoff) == 1
        soon.set()
        assert (await late, await prompt) == ("408", "body")

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    async def scenario() -> None:
        deadlines = BodyDeadlines(15.0)
        task = asyncio.create_task(_read(deadlines, asyncio.Event()))
        await asyncio.sleep(0)
        task.cancel()  # a client disconnect or server shutdown
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_the_watchdog_stops_when_idle() -> None:
    async def scenario() -> None:
        deadlines = BodyDeadlines(0.004)  # the watchdog ticks every millisecond
        arrived = asyncio.Event()
        arrived.set()
        assert await _read(deadlines, arrived) == "body"
        watch = deadlines._loops[asyncio.get_running_loop()]
        assert watch.watchdog is not None
        await asyncio.wait_for(watch.watchdog, timeout=5)  # ends: nothing left to watch
        assert watch.watchdog.done() and not watch.reads

    asyncio.run(scenario())


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        BodyDeadlines(timeout)

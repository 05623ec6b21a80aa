"""The reconciler's work queue: each key once in the queue, never in two workers' hands, retries scheduled."""

from __future__ import annotations

import asyncio

from acinode.pods import workqueue


async def test_a_key_added_many_times_is_handed_out_once() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    for key in ("a", "b", "a", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(queue) == 0


async def test_a_key_added_while_in_hand_comes_back_after_done() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("pod")
    key = await queue.get()
    queue.add("pod")  # a new event for the pod while a worker holds it
    assert len(queue) == 0, "a second worker must not get the same key"
    assert queue.processing == 1
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "pod"


async def test_done_without_a_new_add_forgets_the_key() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add("pod")
    queue.done(await queue.get())
    assert len(queue) == 0 and queue.processing == 0


async def test_get_waits_for_an_add() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("late")
    assert await asyncio.wait_for(getter, 1) == "late"


async def test_add_after_keeps_the_earliest_schedule() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add_after("retry", 60)
    queue.add_after("retry", 0.01)
    queue.add_after("retry", 30)  # later than the one scheduled: ignored
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "retry"


async def test_add_after_with_no_delay_adds_now_and_close_cancels_the_rest() -> None:
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue()
    queue.add_after("now", 0)
    assert len(queue) == 1
    queue.add_after("cancelled", 0.01)
    queue.close()
    queue.add_after("probe", 0.05)  # fires after the cancelled one would have
    assert await queue.get() == "now"
    assert await asyncio.wait_for(queue.get(), 1) == "probe"
    assert len(queue) == 0

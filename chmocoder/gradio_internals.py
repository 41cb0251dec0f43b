"""The few places where ChMOCoder reaches into Gradio's queue beyond its public API, in one module.

`check()` runs when the app is built, so an upgrade of Gradio that renames any of them fails at
start with a clear message instead of mid-turn. What we need and why:
- a limit on the requests *waiting for the model* only: Gradio's own `max_size` counts the waiting
  events of every concurrency group, so a busy model made `/history`, `/list_chats` or `/new_chat`
  answer "Queue is full" although none of them needs the model;
- how often the queue polls for work (it spins every 1 ms by default, which slows llama.cpp);
- how many events wait, for `/metrics`;
- the order of the model's waiting events: round-robin across sessions instead of first come, so
  that one client with 20 requests queued does not make everyone else wait for all 20;
- the request of the event being handled, for the page's language (Gradio's own ChatInterface reads
  it the same way).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import gradio as gr
from gradio import route_utils
from gradio.context import LocalContext
from gradio.queueing import Queue

log = logging.getLogger(__name__)

NEEDED = (
    "blocks",
    "push",
    "event_queue_per_concurrency_id",
    "sleep_when_free",
    "progress_update_sleep_when_free",
    "active_jobs",
    "broadcast_estimations",
)


class GradioChanged(RuntimeError):
    """This Gradio lacks an internal that ChMOCoder relies on: pin the version in requirements.txt."""


def check(demo: gr.Blocks) -> Queue:
    """The demo's queue, once every internal this module uses is known to exist."""
    queue = getattr(demo, "_queue", None)
    if not isinstance(queue, Queue):
        raise GradioChanged(f"gradio {gr.__version__}: Blocks._queue is not a gradio.queueing.Queue")
    missing = [name for name in NEEDED if not hasattr(queue, name)]
    if not hasattr(route_utils, "get_fn"):
        missing.append("route_utils.get_fn")
    if not hasattr(LocalContext, "request"):
        missing.append("context.LocalContext.request")
    if missing:
        raise GradioChanged(f"gradio {gr.__version__} lacks {', '.join(missing)}; ChMOCoder needs gradio 6.31")
    return queue


def current_request() -> Any | None:
    """The gr.Request of the event being handled, or None outside one."""
    return LocalContext.request.get(None)


def waiting(queue: Queue, group: str) -> int:
    """Events of one concurrency group waiting to start (not those running)."""
    events = queue.event_queue_per_concurrency_id.get(group)
    return len(events.queue) if events is not None else 0


def limit_waiting(queue: Queue, full: dict[str, Callable[[], bool]], message: Callable[[str], str]) -> None:
    """Refuse an event only when `full[its group]()` says its group is full; groups not named are
    never refused (the queue's global `max_size` must be None). A refusal keeps Gradio's "queue_full"
    status, so the page and gradio_client report it as they always have."""
    push: Callable[..., Awaitable[Any]] = queue.push

    async def push_within_limits(body: Any, request: Any, username: str | None) -> Any:
        try:
            group = route_utils.get_fn(queue.blocks, None, body).concurrency_id
        except Exception:  # noqa: BLE001 - an event Gradio itself will refuse, with its own message
            return await push(body, request, username)
        is_full = full.get(group)
        if is_full is not None and is_full():
            return False, message(group), "queue_full"
        return await push(body, request, username)

    queue.push = push_within_limits  # type: ignore[method-assign]


def set_polling(queue: Queue, seconds: float, progress_seconds: float) -> None:
    queue.sleep_when_free = seconds
    queue.progress_update_sleep_when_free = progress_seconds


def order_fairly(queue: Queue, group: str) -> None:
    """Keep the group's waiting events in fair order: an event's rank is how many events of its
    session run or wait ahead of it, so a session with nothing running goes before the second event
    of one that has a turn running, and so on (first come first within a rank and a session).

    Done where Gradio tells the pages their positions (broadcast_estimations: after a push, a start,
    an end), so no page is ever told a place it does not have. Reordering after Gradio's push had it
    tell a new event its unfair place first (5th, then 1st a moment later; a test read the 5th)."""
    broadcast: Callable[..., None] = queue.broadcast_estimations

    def broadcast_fairly(concurrency_id: str, after: int | None = None) -> None:
        events = queue.event_queue_per_concurrency_id.get(concurrency_id)
        if concurrency_id == group and events is not None and len(events.queue) > 1:
            # No await in here: no other coroutine sees the queue half reordered.
            running = Counter(
                e.session_hash for job in queue.active_jobs if job for e in job if e.concurrency_id == group
            )
            ahead: Counter[str] = Counter()
            ranked = []
            for event in events.queue:
                ranked.append((running[event.session_hash] + ahead[event.session_hash], event.enqueue_time, event))
                ahead[event.session_hash] += 1
            reordered = [event for *_, event in sorted(ranked, key=lambda r: (r[0], r[1]))]
            if reordered != events.queue:
                events.queue[:] = reordered
                after = None  # every place may have changed
        broadcast(concurrency_id, after)

    queue.broadcast_estimations = broadcast_fairly  # type: ignore[method-assign]

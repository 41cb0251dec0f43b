"""Running a turn to its end for an HTTP request that wants the whole answer (REST, `/v1` without
streaming), off the event loop, and stopping it when the client leaves."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import closing

import anyio
from fastapi import Request

from .turn import Reply

# How often a waiting request looks whether its client is still there (Stop lands within this).
DISCONNECT_POLL_S = 0.5


async def answer_unless_gone(request: Request, replies: Iterator[Reply]) -> Reply:
    """Run a turn to the end on a worker thread and return its last reply (the whole answer with its
    stats). A client that leaves first stops the turn, as Stop would: the model is freed for the next
    request instead of writing to the end for nobody, and a stored chat keeps the answer as stopped."""
    gone = threading.Event()

    def last_reply() -> Reply:
        last = Reply("", done=True)
        with closing(replies):
            for last in replies:  # noqa: B007 - each reply is the whole answer so far
                if gone.is_set():
                    break
        return last

    running = asyncio.ensure_future(anyio.to_thread.run_sync(last_reply))
    while not running.done():
        await asyncio.wait({running}, timeout=DISCONNECT_POLL_S)
        if not running.done() and await request.is_disconnected():
            gone.set()
    return await running

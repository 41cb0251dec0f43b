"""Run a token stream in its own thread and hand it on in batches, so the model never waits for
its consumer (Gradio's per-update work, a slow network) and consumers see at most one update per
`interval`. The first token is handed on at once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Failed:
    error: BaseException


DONE = object()


def in_background(source: Iterator[T], interval: float, executor: Executor | None = None) -> Iterator[list[T]]:
    """Yield lists of the items `source` produced since the last yield.

    `source` runs on `executor` when one is given (the model's own thread), else on a new thread.

    Closing the returned iterator (Stop, a disconnect) stops `source` at its next item and waits
    for it to wind down, so whatever it holds (the model's lock) is free when close() returns.
    An exception in `source` is raised here, after the items produced before it.
    """
    items: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                items.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which raises it
            items.put(Failed(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
            items.put(DONE)

    if executor is not None:
        wait_for_producer: Callable[[], object] = executor.submit(produce).result
    else:
        worker = threading.Thread(target=produce, name="chmocoder-generate", daemon=True)
        worker.start()
        wait_for_producer = worker.join

    def finish() -> None:
        stop.set()
        wait_for_producer()

    yield from drain(items, interval, finish)


def drain(items: queue.SimpleQueue[object], interval: float, finish: Callable[[], object]) -> Iterator[list[T]]:
    """Yield lists of what was put on `items` since the last yield, until `DONE` (or a `Failed`,
    whose error is raised after the items before it). `finish` runs when the consumer is done,
    however it ends: closing the iterator early is how a producer learns to stop."""
    last_yield = 0.0
    try:
        while True:
            batch = [items.get()]
            # Gather until the interval is over, but hand on at once when the source has finished.
            deadline = last_yield + interval
            while batch[-1] is not DONE and not isinstance(batch[-1], Failed):
                remaining = deadline - time.monotonic()
                try:
                    batch.append(items.get(timeout=remaining) if remaining > 0 else items.get_nowait())
                except queue.Empty:
                    break
            done = next((i for i, item in enumerate(batch) if item is DONE or isinstance(item, Failed)), None)
            ready = [item for item in batch[:done]]
            if ready:
                yield ready  # type: ignore[misc]
                last_yield = time.monotonic()
            if done is not None:
                if isinstance(batch[done], Failed):
                    raise batch[done].error  # type: ignore[union-attr]
                return
    finally:
        finish()

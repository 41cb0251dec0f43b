"""How many requests may wait for the model, counted across every surface.

The page and gradio_client wait in Gradio's queue; `/v1` requests wait on the engine directly. One
limit (`CHMOCODER_QUEUE_MAX_SIZE`) covers both: a request for the model is refused when that many
already wait, whichever surface they came through, and nothing else is ever refused for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ModelAdmission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0  # /v1 requests admitted and not yet finished
        self.queued: Callable[[], int] = lambda: 0  # events waiting in Gradio's queue for the model
        self._lock = threading.Lock()

    def waiting(self) -> int:
        return self.in_flight + self.queued()

    def full(self) -> bool:
        return self.waiting() >= self.limit

    def enter(self) -> bool:
        """Admit one /v1 request unless the limit is reached; a request admitted must `leave()`."""
        with self._lock:
            if self.full():
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

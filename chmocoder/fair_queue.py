"""Who gets the model's next free sequence: round-robin across the parties waiting, not first come.

A party is whoever asks (an owner token, an API key, a client address: the chat service decides).
One party holding 20 requests must not make everyone else wait for all 20, and must not hold every
sequence at once: `pop` takes the oldest request of the party that was served longest ago, skipping
parties already at their cap of running requests. Not thread-safe: its user holds a lock.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, cap: int) -> None:
        self.cap = cap  # running requests one party may hold at once
        self._waiting: OrderedDict[str, deque[T]] = OrderedDict()  # served longest ago first
        self.running: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(items) for items in self._waiting.values())

    def push(self, party: str, item: T) -> None:
        self._waiting.setdefault(party, deque()).append(item)

    def pop(self) -> tuple[str, T] | None:
        """The next request to run (now counted as running for its party), or None if none may run."""
        for party, items in self._waiting.items():
            if self.running.get(party, 0) >= self.cap:
                continue
            item = items.popleft()
            if items:
                self._waiting.move_to_end(party)
            else:
                del self._waiting[party]
            self.running[party] = self.running.get(party, 0) + 1
            return party, item
        return None

    def done(self, party: str) -> None:
        """One of the party's running requests has finished."""
        left = self.running.get(party, 0) - 1
        if left > 0:
            self.running[party] = left
        else:
            self.running.pop(party, None)

    def remove(self, match: Callable[[T], bool]) -> list[T]:
        """Take out waiting requests (cancelled before they ran)."""
        removed: list[T] = []
        for party in list(self._waiting):
            items = self._waiting[party]
            kept = deque(item for item in items if not match(item))
            removed.extend(item for item in items if match(item))
            if kept:
                self._waiting[party] = kept
            else:
                del self._waiting[party]
        return removed

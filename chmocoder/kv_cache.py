"""Per-conversation KV states, so a follow-up re-reads only its new tokens even when chats interleave.

llama.cpp keeps one sequence in its context: as soon as another chat runs, the previous chat's
history must be read again (about 54 tokens/s here: a minute for 3,000 tokens). After each turn the
engine saves the sequence's KV state (llama_state_seq_get_data: the KV cells only, unlike
LlamaRAMCache, which also stores a logits array of hundreds of MB) under the conversation's key.
Before a turn it restores the saved state with the longest common prefix with the new prompt.

States live in a RAM budget with least-recently-used eviction; evicted states spill to a disk
directory (with a budget of its own) when one is configured.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    key: str
    tokens: np.ndarray  # int32: the tokens whose KV cells the state holds
    size: int
    data: bytearray | None = None  # in RAM (writable: llama.cpp reads it in place), or
    path: Path | None = None  # on disk


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class KVCache:
    """Thread-safe LRU of KV states: `ram_budget` bytes in memory, then `disk_budget` bytes in `disk_dir`."""

    def __init__(self, ram_budget: int, disk_dir: Path | None = None, disk_budget: int = 0) -> None:
        self.ram_budget = ram_budget
        self.disk_dir = disk_dir if disk_budget > 0 else None
        self.disk_budget = disk_budget
        self._ram: OrderedDict[str, Snapshot] = OrderedDict()
        self._disk: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.disk_dir.glob("*.kv"):  # states of a previous process are not reusable
                stale.unlink(missing_ok=True)

    @property
    def enabled(self) -> bool:
        return self.ram_budget > 0 or self.disk_dir is not None

    @property
    def ram_bytes(self) -> int:
        return sum(s.size for s in self._ram.values())

    @property
    def disk_bytes(self) -> int:
        return sum(s.size for s in self._disk.values())

    def __len__(self) -> int:
        return len(self._ram) + len(self._disk)

    def put(self, key: str, tokens: np.ndarray, data: bytearray) -> None:
        snapshot = Snapshot(key, np.asarray(tokens, dtype=np.int32).copy(), len(data), data=data)
        with self._lock:
            self._drop(key)
            self._ram[key] = snapshot
            self._fit()

    def best(self, prompt: np.ndarray) -> tuple[Snapshot, int] | None:
        """The state sharing the longest prefix with `prompt`, and that prefix's length."""
        with self._lock:
            candidates = [*self._ram.values(), *self._disk.values()]
        scored = [(common_prefix(s.tokens, prompt), s) for s in candidates]
        scored = [(n, s) for n, s in scored if n > 0]
        if not scored:
            return None
        n, snapshot = max(scored, key=lambda pair: pair[0])
        return snapshot, n

    def load(self, snapshot: Snapshot) -> bytearray | None:
        """The state's bytes (None if it was evicted meanwhile); a use makes it most recent."""
        with self._lock:
            if snapshot.key in self._ram:
                self._ram.move_to_end(snapshot.key)
                return snapshot.data
            if snapshot.key in self._disk and snapshot.path is not None:
                self._disk.move_to_end(snapshot.key)
                data = bytearray(snapshot.size)
                try:
                    with snapshot.path.open("rb") as file:
                        if file.readinto(data) == snapshot.size:
                            return data
                except OSError:
                    pass
                self._drop(snapshot.key)
        return None

    def _drop(self, key: str) -> None:
        self._ram.pop(key, None)
        gone = self._disk.pop(key, None)
        if gone is not None and gone.path is not None:
            gone.path.unlink(missing_ok=True)

    def _fit(self) -> None:
        """Evict least recently used states from RAM to disk (or drop them), then trim the disk."""
        while self._ram and self.ram_bytes > self.ram_budget:
            _, oldest = self._ram.popitem(last=False)
            self._spill(oldest)
        while self._disk and self.disk_bytes > self.disk_budget:
            _, oldest = self._disk.popitem(last=False)
            if oldest.path is not None:
                oldest.path.unlink(missing_ok=True)

    def _spill(self, snapshot: Snapshot) -> None:
        if self.disk_dir is None or snapshot.data is None or snapshot.size > self.disk_budget:
            return
        path = self.disk_dir / (hashlib.sha256(snapshot.key.encode()).hexdigest()[:32] + ".kv")
        try:
            path.write_bytes(snapshot.data)
        except OSError:
            log.warning("could not spill a KV state to %s", path)
            return
        snapshot.data, snapshot.path = None, path
        self._disk[snapshot.key] = snapshot

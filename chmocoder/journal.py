"""Answers that could not be saved, kept on local disk until chat storage takes them.

A finished or stopped answer is the one thing a user cannot get back by asking again quickly, so an
answer whose save fails (Redis down or hung at that moment) is written here instead of dropped, and
written to Redis later: at start-up, every few seconds in the background, and before the next turn of
the same chat (so that it lands after its own question, never after a newer one).

One file per answer, named so that names sort in the order the answers were written; each is written
to a temporary name and renamed, so a crash leaves either the whole entry or none. The journal is
bounded: when it is full, `add` refuses and the caller reports the loss instead of filling the disk.
Replaying is idempotent (`ChatStore.append(..., once=True)` skips a message already among the chat's
last few), because a save that timed out may have reached Redis after all.

An answer is also kept here when it was saved but fewer replicas than CHMOCODER_REDIS_WAIT_REPLICAS
acknowledged it in time (chmocoder.chat decides): then it is on the primary only, and a failover could
lose it, and its question with it. Such an entry carries the question too; replay writes the question
first unless the chat still has it, then the answer unless the chat has it, so a turn that a
failover lost comes back whole and in order, and one that survived is not written twice.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from .store import ChatNotFound, StoreError

log = logging.getLogger(__name__)


class StoreLike(Protocol):
    def append(self, chat_id: str, message: dict[str, Any], title: str = "", keep: int | None = None, *,
               once: bool = False) -> None: ...  # fmt: skip


class Journal:
    def __init__(self, directory: Path, max_entries: int) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        directory.mkdir(parents=True, exist_ok=True)

    def _files(self, chat_id: str | None = None) -> list[Path]:
        pattern = f"*-{chat_id}.json" if chat_id else "*.json"
        return sorted(self.directory.glob(pattern))

    def __len__(self) -> int:
        return len(self._files())

    def holds(self, chat_id: str) -> bool:
        """An answer of this chat waits here (so its question is not unanswered)."""
        return bool(self._files(chat_id))

    def add(self, chat_id: str, message: dict[str, Any], question: dict[str, Any] | None = None) -> bool:
        """Keep one unsaved message of a chat (and the question it answers, as saved); False when the
        journal is full (or the disk fails)."""
        with self._lock:
            if len(self._files()) >= self.max_entries:
                log.error("the journal of unsaved answers is full (%d); chat=%s is lost", self.max_entries, chat_id)
                return False
            name = f"{time.time_ns():020d}-{next(self._sequence):06d}-{chat_id}.json"
            temporary = self.directory / f".{name}.tmp"
            try:
                entry = {"chat_id": chat_id, "message": message} | ({"question": question} if question else {})
                temporary.write_text(json.dumps(entry, ensure_ascii=False))
                os.replace(temporary, self.directory / name)
            except OSError:
                log.exception("could not write the journal of unsaved answers in %s", self.directory)
                return False
        log.warning("the answer is kept in the journal until chat storage surely has it chat=%s", chat_id)
        return True

    def replay(self, store: StoreLike, chat_id: str | None = None) -> int:
        """Write the kept messages (of one chat, or all) to the store, oldest first, and forget each once
        written. Stops at the first storage failure and lets it propagate; a chat that is gone
        (expired or deleted meanwhile) takes nothing, and its entries are dropped. Returns how many
        were written."""
        written = 0
        with self._lock:
            for path in self._files(chat_id):
                try:
                    entry = json.loads(path.read_text())
                except (OSError, ValueError):
                    log.exception("an unreadable journal entry is set aside: %s", path)
                    path.rename(path.with_suffix(".bad"))
                    continue
                try:
                    if entry.get("question"):
                        store.append(entry["chat_id"], entry["question"], once=True)
                    store.append(entry["chat_id"], entry["message"], once=True)
                    written += 1
                except ChatNotFound:
                    log.warning("chat=%s is gone; its unsaved answer is dropped", entry["chat_id"])
                path.unlink()
        if written:
            log.info("wrote %d kept answer(s) from the journal to chat storage", written)
        return written


def keep_replaying(journal: Journal, store: StoreLike, every_s: float, stop: threading.Event) -> threading.Thread:
    """A background thread that writes the journal to the store every `every_s` seconds while it has
    entries, until `stop` is set; a storage failure only means "try again next time"."""

    def loop() -> None:
        while not stop.wait(every_s):
            if len(journal):
                try:
                    journal.replay(store)
                except StoreError:
                    log.debug("chat storage is still unreachable; %d answer(s) wait in the journal", len(journal))

    thread = threading.Thread(target=loop, name="chmocoder-journal", daemon=True)
    thread.start()
    return thread

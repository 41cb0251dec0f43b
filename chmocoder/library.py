"""A browser's (or client's) list of chats, and sharing: everything about chats except their turns.

Kept apart from the turn service (chat.py), which only runs turns: these operations never touch
the model, so they stay quick and never wait for it.
"""

from __future__ import annotations

import logging
from typing import Any

from .attachments import looks_binary
from .chat import check_owner, checked_instructions
from .chat_search import MAX_QUERY_CHARS, Hit, query_words, search
from .errors import Forbidden, InvalidInput, storage_errors
from .metrics import FEEDBACK
from .records import ChatMeta, StoredMessage
from .store import ChatStore
from .titles import TITLE_CHARS

log = logging.getLogger(__name__)
DAY = 86400
RATINGS = ("up", "down")


def duration(seconds: float) -> str:
    """A span as people say it: "45 minutes", "23 hours", "7 days"."""
    for unit, size, next_size in (("minute", 60, 3600), ("hour", 3600, DAY), ("day", DAY, None)):
        n = max(1, round(seconds / size))
        if next_size is None or round(seconds / next_size) < 1 or n < next_size // size:
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return ""


class ChatLibrary:
    def __init__(self, store: ChatStore) -> None:
        self.store = store

    def open_chat(self, chat_id: str, owner: str) -> ChatMeta:
        """Open a chat by its id (the id is the key to reading and continuing it) and add it to this
        browser's list; unless this browser started it, as a guest, who can only remove it again."""
        check_owner(owner)
        with storage_errors():
            meta = self.store.meta(chat_id)
            self.store.adopt(owner, chat_id)
        return meta

    def list_chats(self, owner: str) -> list[dict[str, Any]]:
        check_owner(owner)
        with storage_errors():
            return self.store.owned_chats(owner)

    def search(self, owner: str, query: str) -> list[Hit]:
        """This owner's chats holding every word of `query`, newest first, each with its best line."""
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"a search is at most {MAX_QUERY_CHARS} characters")
        chats = self.list_chats(owner)
        if not query_words(query):
            return []
        with storage_errors():
            transcripts = self.store.raw_transcripts([c["id"] for c in chats])
        return search(query, chats, transcripts)

    def instructions(self, owner: str) -> str:
        check_owner(owner)
        with storage_errors():
            return self.store.instructions(owner)

    def set_instructions(self, owner: str, text: str) -> str:
        """Keep standing instructions for every new answer this owner asks for; "" removes them."""
        check_owner(owner)
        text = checked_instructions(text)
        with storage_errors():
            self.store.set_instructions(owner, text)
        log.info("standing instructions %s", "set" if text else "removed")
        return text

    def rename(self, chat_id: str, owner: str, title: str) -> str:
        title = " ".join(str(title).split())[:TITLE_CHARS]
        if not title or looks_binary(title):
            raise InvalidInput("a chat title must be some plain text")
        self._require_creator(chat_id, owner, "rename it")
        with storage_errors():
            self.store.update(chat_id, title=title)
        return title

    def keep_choices(self) -> list[int]:
        """How long after its last use a creator may keep a chat: the default, a week, 30 days, the most."""
        low, high = self.store.ttl, self.store.max_ttl
        return sorted({s for s in (low, 7 * DAY, 30 * DAY, high) if low <= s <= high})

    def keep(self, chat_id: str, owner: str, seconds: int) -> None:
        """Keep the chat `seconds` after its last use (one of keep_choices, or anything between)."""
        if not isinstance(seconds, int) or not self.store.ttl <= seconds <= self.store.max_ttl:
            raise InvalidInput(
                f"a chat can be kept {duration(self.store.ttl)} to {duration(self.store.max_ttl)} after its last use"
            )
        self._require_creator(chat_id, owner, "choose how long it is kept")
        with storage_errors():
            self.store.keep(chat_id, seconds)
        log.info("chat kept chat=%s seconds=%d", chat_id, seconds)

    def rate(self, chat_id: str, owner: str, index: int, rating: str | None) -> StoredMessage:
        """Thumbs up or down (None: neither) on the answer at `index` of a chat in this owner's list:
        kept with the message, in its exports, and counted in /metrics."""
        if rating not in (*RATINGS, None) or not isinstance(index, int) or isinstance(index, bool):
            raise InvalidInput('a rating is "up", "down" or none, for the index of an answer in the chat')
        check_owner(owner)
        with storage_errors():
            if not self.store.owns(owner, chat_id):
                raise Forbidden("only a chat in your list of chats can be rated")
            try:
                rated = self.store.rate(chat_id, index, rating)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        FEEDBACK.labels(rating or "cleared").inc()
        log.info("answer rated chat=%s index=%d rating=%s", chat_id, index, rating or "cleared")
        return rated

    def delete(self, chat_id: str, owner: str) -> None:
        self._require_creator(chat_id, owner, "delete it; you can remove it from your list")
        with storage_errors():
            self.store.delete(chat_id)
            self.store.forget(owner, chat_id)
        log.info("chat deleted chat=%s", chat_id)

    def remove_from_list(self, chat_id: str, owner: str) -> None:
        """Take a chat off this browser's list (all a guest can do); the chat itself stays."""
        check_owner(owner)
        with storage_errors():
            if not self.store.owns(owner, chat_id):
                raise Forbidden("this chat is not in your list of chats")
            self.store.forget(owner, chat_id)

    def is_guest(self, chat_id: str, owner: str, meta: ChatMeta) -> bool:
        """This browser opened the chat by its id but did not start it."""
        with storage_errors():
            return bool(chat_id) and not self.store.created_by(owner, chat_id, meta)

    def share(self, chat_id: str, owner: str) -> str:
        """A token for a read-only link to the chat; it expires with the chat."""
        self._require_creator(chat_id, owner, "share it")
        with storage_errors():
            return self.store.share(chat_id)

    def shared(self, token: str) -> tuple[ChatMeta, list[StoredMessage]]:
        """Metadata and transcript behind a share token, without revealing the chat id."""
        with storage_errors():
            meta, messages = self.store.chat(self.store.shared_chat(token))
            return {k: v for k, v in meta.items() if k not in ("share", "creator")}, messages

    def _require_creator(self, chat_id: str, owner: str, doing: str) -> None:
        check_owner(owner)
        with storage_errors():
            meta = self.store.meta(chat_id)
            if not self.store.created_by(owner, chat_id, meta):
                raise Forbidden(f"only the person who started this chat can {doing}")

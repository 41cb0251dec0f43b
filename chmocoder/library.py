"""A browser's (or client's) list of chats, and sharing: everything about chats except their turns.

Kept apart from the turn service (chat.py), which only runs turns: these operations never touch
the model, so they stay quick and never wait for it.
"""

from __future__ import annotations

import logging
from typing import Any

from .chat import TITLE_CHARS, check_owner, looks_binary
from .errors import Forbidden, InvalidInput, storage_errors
from .records import ChatMeta, StoredMessage
from .store import ChatStore

log = logging.getLogger(__name__)


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

    def rename(self, chat_id: str, owner: str, title: str) -> str:
        title = " ".join(str(title).split())[:TITLE_CHARS]
        if not title or looks_binary(title):
            raise InvalidInput("a chat title must be some plain text")
        self._require_creator(chat_id, owner, "rename it")
        with storage_errors():
            self.store.update(chat_id, title=title)
        return title

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

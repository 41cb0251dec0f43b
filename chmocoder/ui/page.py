"""What every panel shares: the page's states, and one reading of the open chat that each panel
paints its own part of.

The browser keeps (gr.BrowserState) an owner token, the key to its list of chats, the id of the
chat it had open and, while a message waits in the queue, that message: it is not in Redis until
its turn starts, and a reload or a closed tab must not lose it. Everything else is read from Redis
through the services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.blocks import Block

from ..chat import ChatService
from ..library import ChatLibrary
from ..settings import Settings

STORAGE_KEY = "chmocoder"

Updates = dict[Any, Any]  # component → new value, as Gradio takes a handler's result


@dataclass(frozen=True)
class Shown:
    """The open chat as the panels paint it, read once from the store."""

    chat_id: str
    owner: str
    meta: dict[str, str] | None
    history: list[dict[str, Any]]
    chats: list[dict[str, Any]]
    notice: str = ""
    stats: str | None = None  # None: the stats line stays as it is
    message: Any = None  # None: the message box stays as it is; else text, or {"text", "files": paths}
    fresh: bool = False  # a chat was opened or a turn has finished: panels that follow the answers refill
    guest: bool = False  # this browser opened the chat by its id but did not start it


class Page:
    """The shared states and the painters: `show()` gives every component that depends on the open
    chat its value, so that every event that changes the chat has the same outputs (`outputs`)."""

    def __init__(self, service: ChatService, library: ChatLibrary, settings: Settings) -> None:
        self.service = service
        self.library = library
        self.settings = settings
        self.chat_id = gr.State("")
        self.owner = gr.State("")
        # A message accepted on screen, until its queued turn starts: {"text", "files", "box"} (chat.Turns.accept).
        self.pending = gr.State(None)
        # A dict, never a bare string: BrowserState does not write falsy values.
        self.browser = gr.BrowserState({"owner": "", "chat": ""}, storage_key=STORAGE_KEY)
        self.outputs: set[Block] = {self.chat_id, self.browser}
        self._painters: list[Callable[[Shown], Updates]] = [self._paint_states]
        self._listing_painters: list[Callable[[Shown], Updates]] = []
        self._loaders: list[Callable[[str], Updates]] = []
        self.load_outputs: set[Block] = set()

    def paints(self, components: Iterable[Block], painter: Callable[[Shown], Updates]) -> None:
        """Register a panel's painter and the components it may set (before any event is wired)."""
        self.outputs |= set(components)
        self._painters.append(painter)

    def paints_listing(self, painter: Callable[[Shown], Updates]) -> None:
        """Register the part of a panel that shows only the chat's name and the list of chats (its
        components registered with `paints`): what `show_listing` refreshes while a turn runs."""
        self._listing_painters.append(painter)

    def loads(self, components: Iterable[Block], loader: Callable[[str], Updates]) -> None:
        """Register what a panel fills once when the page loads, from the browser's owner token: it
        arrives with the rest of the load, before the page says it is ready, so nothing typed after
        that is overwritten."""
        self.load_outputs |= set(components)
        self._loaders.append(loader)

    def loaded(self, owner: str) -> Updates:
        updates: Updates = {}
        for loader in self._loaders:
            updates |= loader(owner)
        return updates

    def read_listing(self, chat_id: str, owner: str) -> Shown:
        """The open chat's metadata and the list, without its messages or waiting for a turn to save."""
        meta = self.service.info(chat_id) if chat_id else None
        return Shown(chat_id, owner, meta, [], self.library.list_chats(owner))

    def show_listing(self, chat_id: str, owner: str) -> Updates:
        """The chat's title and the sidebar's list, read while the chat's turn is still running (so
        without waiting for it to be saved): a new chat is listed as soon as its question is sent."""
        return self._paint_with(self._listing_painters, self.read_listing(chat_id, owner))

    @staticmethod
    def remembered(owner: str, chat_id: str, draft: str = "") -> dict[str, str]:
        """What the browser keeps: its owner token, its open chat, and a message not yet saved."""
        return {"owner": owner, "chat": chat_id} | ({"draft": draft} if draft else {})

    def read(self, chat_id: str, owner: str, **how: Any) -> Shown:
        """The chat as stored now; a turn still saving (a reload or Stop mid-answer) is waited for."""
        meta: dict[str, str] | None = None
        history: list[dict[str, Any]] = []
        guest = False
        if chat_id:
            self.service.wait_until_saved(chat_id)
            meta, history = self.service.chat(chat_id)
            guest = self.library.is_guest(chat_id, owner, meta)
        return Shown(chat_id, owner, meta, history, self.library.list_chats(owner), **how, guest=guest)

    def paint(self, shown: Shown) -> Updates:
        return self._paint_with(self._painters, shown)

    @staticmethod
    def _paint_with(painters: list[Callable[[Shown], Updates]], shown: Shown) -> Updates:
        updates: Updates = {}
        for painter in painters:
            updates |= painter(shown)
        return updates

    def show(self, chat_id: str, owner: str, **how: Any) -> Updates:
        """Everything on screen that depends on which chat is open, read fresh from the store.
        `how`: notice, stats, message, fresh (see Shown)."""
        return self.paint(self.read(chat_id, owner, **how))

    def _paint_states(self, shown: Shown) -> Updates:
        return {self.chat_id: shown.chat_id, self.browser: self.remembered(shown.owner, shown.chat_id)}

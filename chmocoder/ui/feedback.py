"""Thumbs up or down on an answer (the Chatbot's like event), kept with the message by ChatLibrary.

The Chatbot shows what was given from its `feedback_value` (painted with the chat, so a reload shows
it too); clicking the chosen thumb again takes the rating back (Gradio then sends `liked=""`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..errors import ChatError
from .chat import NOW, ChatPanel
from .language import say
from .page import Page, Updates

LIKED = {True: "up", False: "down"}


def wire(page: Page, chat: ChatPanel) -> None:
    def rate(values: dict[Any, Any], like: gr.LikeData) -> Updates:
        index = like.index if isinstance(like.index, int) else -1
        try:
            page.library.rate(values[page.chat_id], values[page.owner], index, LIKED.get(like.liked))  # type: ignore[arg-type]
        except ChatError as exc:  # the thumb on screen goes back to what is kept
            return page.show(values[page.chat_id], values[page.owner], notice=say("*Not rated: {why}*", why=exc))
        return {chat.notice: ""}

    chat.chatbot.like(rate, {page.chat_id, page.owner}, page.outputs, **NOW)

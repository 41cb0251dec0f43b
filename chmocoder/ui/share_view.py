"""A shared chat, read-only: what a `?share=<token>` link shows instead of the chat and its controls."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import gradio as gr
from gradio.blocks import Block

from ..errors import ChatError
from ..library import ChatLibrary
from .language import tr
from .page import Updates
from .render import export_links, header_line, to_chatbot


@dataclass
class ShareView:
    heading: gr.Markdown
    chatbot: gr.Chatbot

    @property
    def outputs(self) -> set[Block]:
        return {self.heading, self.chatbot}

    def show(
        self, library: ChatLibrary, token: str, hide: Iterable[Block], notice: gr.Markdown, sidebar: gr.Sidebar
    ) -> Updates:
        """The shared chat in place of the page's own panels (`hide`, and the sidebar closed), or why
        it cannot be shown."""
        hidden: Updates = {block: gr.update(visible=False) for block in hide}
        try:
            meta, history = library.shared(token)
        except ChatError as exc:
            return hidden | {notice: f"*{exc}*"}
        links = export_links(f"download/shared/{token}")
        return hidden | {
            self.heading: f"{header_line(meta)} — a shared chat, read-only. {links}",
            self.chatbot: gr.update(value=to_chatbot(history), visible=True),
            sidebar: gr.update(open=False),
        }


def build() -> ShareView:
    """Both parts stay out of sight (the heading is empty) unless a share link is opened."""
    heading = gr.Markdown("", elem_id="chmocoder-readonly")
    chatbot = gr.Chatbot(
        label=tr("Shared chat"),
        height=560,
        buttons=["copy"],
        sanitize_html=True,
        allow_tags=False,
        visible=False,
        elem_id="chmocoder-shared",
    )
    return ShareView(heading, chatbot)

"""The sidebar: this browser's chats, New chat, and the open chat's rename, share, downloads, delete.

None of it touches the model: every event runs at once, outside the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..chat_search import Hit
from ..errors import ChatError, UnknownChat
from ..gradio_errors import user_errors, warn
from . import keys
from .language import say, switch, tr
from .page import Page, Shown, Updates
from .render import chat_choices, expiry_note, export_links, hit_choices, keep_choices, open_row, search_note

NOW = {"queue": False, "api_visibility": "private"}
CONFIRM_DELETE = (
    "(...args) => { if (!confirm('Delete this chat for good?')) throw new Error('cancelled'); return args; }"
)
GUEST_NOTE = "*Someone else started this chat: you can read and continue it, not rename, share or delete it.*"
# The server makes the token; the browser, which knows its own address, turns it into a link.
SHARE_LINK = "(t) => t ? window.location.origin + window.location.pathname + '?share=' + t : ''"


@dataclass
class Sidebar:
    sidebar: gr.Sidebar
    new_chat: gr.Button
    search: gr.Textbox
    search_note: gr.Markdown
    chat_list: gr.Radio
    title_box: gr.Textbox
    expiry: gr.Markdown
    keep: gr.Dropdown
    rename: gr.Button
    share: gr.Button
    share_link: gr.Textbox
    downloads: gr.HTML
    delete: gr.Button
    remove: gr.Button
    guest_note: gr.Markdown
    language: gr.Dropdown
    keep_seconds: list[int]  # the "Keep it" choices (ChatLibrary.keep_choices), named in the page's language

    def paint(self, shown: Shown) -> Updates:
        """Only the browser that started a chat may rename, share or delete it; one that opened it by
        its id (a guest) may read, continue it, and take it off its own list."""
        current, creator = shown.chat_id, not shown.guest
        row = open_row(shown.chats, current)
        return self.paint_listing(shown) | {
            self.title_box: gr.update(value=(shown.meta or {}).get("title", ""), interactive=creator),
            self.expiry: expiry_note(row),
            self.keep: gr.update(
                choices=keep_choices(self.keep_seconds),
                value=row["keep_s"] if row else None,
                visible=creator and row is not None,
            ),
            self.downloads: export_links(f"download/chats/{current}" if current else ""),
            self.share_link: gr.update(value="", visible=creator),
            self.rename: gr.update(visible=creator),
            self.share: gr.update(visible=creator),
            self.delete: gr.update(visible=creator),
            self.remove: gr.update(visible=shown.guest),
            self.guest_note: gr.update(visible=shown.guest),
        }

    def paint_listing(self, shown: Shown) -> Updates:
        """The whole list again (a search, if any, is over)."""
        return {
            self.chat_list: gr.update(choices=chat_choices(shown.chats), value=shown.chat_id or None),
            self.search: "",
            self.search_note: "",
        }

    def paint_hits(self, query: str, hits: list[Hit], current: str) -> Updates:
        ids = {hit.chat_id for hit in hits}
        return {
            self.chat_list: gr.update(choices=hit_choices(hits), value=current if current in ids else None),
            self.search_note: search_note(query, len(hits)),
        }


def build(page: Page) -> Sidebar:
    with gr.Sidebar(open=True, elem_id="chmocoder-sidebar") as sidebar:
        gr.Markdown("### ChMOCoder")
        new_chat = gr.Button(tr("New chat"), variant="primary", elem_id="chmocoder-new")
        search = gr.Textbox(
            placeholder=tr("Search your chats"),
            show_label=False,
            max_lines=1,
            elem_id="chmocoder-search",
            container=False,
        )
        search_note = gr.Markdown("", elem_id="chmocoder-search-note")
        chat_list = gr.Radio([], label=tr("Your chats"), elem_id="chmocoder-chats")
        with gr.Accordion(tr("This chat"), open=False, elem_id="chmocoder-manage"):
            title_box = gr.Textbox(label=tr("Title"), max_lines=1, elem_id="chmocoder-title-box")
            rename = gr.Button(tr("Rename"), size="sm")
            expiry = gr.Markdown("", elem_id="chmocoder-expiry")
            keep = gr.Dropdown(
                keep_choices(page.library.keep_choices()), label=tr("Keep it"), elem_id="chmocoder-keep", visible=False
            )
            share = gr.Button(tr("Share a read-only link"), size="sm", elem_id="chmocoder-share")
            share_link = gr.Textbox(
                label=tr("Read-only link"), interactive=False, buttons=["copy"], elem_id="chmocoder-share-link"
            )
            downloads = gr.HTML("", elem_id="chmocoder-downloads")
            delete = gr.Button(tr("Delete this chat"), variant="stop", size="sm", elem_id="chmocoder-delete")
            guest_note = gr.Markdown(tr(GUEST_NOTE), visible=False, elem_id="chmocoder-guest-note")
            remove = gr.Button(tr("Remove from my list"), size="sm", visible=False, elem_id="chmocoder-remove")
        gr.Markdown(tr(keys.HINT), elem_id="chmocoder-keys")
        language = switch()
    panel = Sidebar(
        sidebar,
        new_chat,
        search,
        search_note,
        chat_list,
        title_box,
        expiry,
        keep,
        rename,
        share,
        share_link,
        downloads,
        delete,
        remove,
        guest_note,
        language,
        page.library.keep_choices(),
    )
    page.paints(
        [chat_list, search, search_note, title_box, expiry, keep, downloads, share_link, rename, share, delete, remove]
        + [guest_note],
        panel.paint,
    )
    page.paints_listing(panel.paint_listing)
    return panel


def wire(page: Page, side: Sidebar) -> None:
    """Open, start, rename, delete and share chats."""
    library, chat_id, owner = page.library, page.chat_id, page.owner

    def start_new(values: dict[Any, Any]) -> Updates:
        return page.show("", values[owner], stats="")

    side.new_chat.click(start_new, {owner}, page.outputs, **NOW)

    def open_chat(values: dict[Any, Any]) -> Updates:
        try:
            return page.show(values[side.chat_list] or "", values[owner], stats="", fresh=True)
        except UnknownChat:
            return page.show("", values[owner], notice=say("*That chat has expired.*"))

    side.chat_list.input(open_chat, {side.chat_list, owner}, page.outputs, **NOW)

    def find(values: dict[Any, Any]) -> Updates:
        query, me = values[side.search], values[owner]
        try:
            if not query.strip():
                return side.paint_listing(page.read_listing(values[chat_id], me))
            return side.paint_hits(query, library.search(me, query), values[chat_id])
        except ChatError as exc:
            return {side.search_note: f"*{exc}*"}

    found = {side.chat_list, side.search, side.search_note}
    # change, not input: pasted or filled text searches too; the repaint that ends a search sets ""
    # only when the box held something, which then shows the whole list once.
    for trigger in (side.search.change, side.search.submit):
        trigger(find, {side.search, owner, chat_id}, found, trigger_mode="always_last", **NOW)

    def rename_chat(values: dict[Any, Any]) -> Updates:
        current, me = values[chat_id], values[owner]
        try:
            library.rename(current, me, values[side.title_box])
        except ChatError as exc:
            warn(exc)  # and show the chat's title as it is
        return page.show(current, me) if current else {}

    for trigger in (side.rename.click, side.title_box.submit):
        trigger(rename_chat, {chat_id, owner, side.title_box}, page.outputs, **NOW)

    def keep_open_chat(values: dict[Any, Any]) -> Updates:
        current, me = values[chat_id], values[owner]
        try:
            library.keep(current, me, int(values[side.keep]))
        except ChatError as exc:
            warn(exc)
        return page.show(current, me) if current else {}

    side.keep.input(keep_open_chat, {chat_id, owner, side.keep}, page.outputs, **NOW)

    @user_errors(fallback={})
    def delete_open_chat(values: dict[Any, Any]) -> Updates:
        library.delete(values[chat_id], values[owner])
        return page.show("", values[owner], notice=say("*Chat deleted.*"), stats="")

    side.delete.click(delete_open_chat, {chat_id, owner}, page.outputs, js=CONFIRM_DELETE, **NOW)

    @user_errors(fallback={})
    def remove_open_chat(values: dict[Any, Any]) -> Updates:
        library.remove_from_list(values[chat_id], values[owner])
        return page.show("", values[owner], notice=say("*Removed from your list; the chat itself stays.*"), stats="")

    side.remove.click(remove_open_chat, {chat_id, owner}, page.outputs, **NOW)

    @user_errors(fallback="")
    def make_share(values: dict[Any, Any]) -> str:
        return library.share(values[chat_id], values[owner])

    shared = side.share.click(make_share, {chat_id, owner}, [side.share_link], **NOW)
    shared.then(None, [side.share_link], [side.share_link], js=SHARE_LINK, api_visibility="private")

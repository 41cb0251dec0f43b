"""The composer: the message box (text, and text files dropped on it or picked with its 📎), Send
and Stop, a meter of how much of the model's window the message takes, and the generation settings.

It holds the components and reads what they hold; the turns panel (chat.py) wires what they
trigger, since a turn also needs the chat's task and level.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ..attachments import Limits, check_count, decoded, file_names
from ..chat import TEMPERATURE_RANGE, ChatService, TurnOptions
from ..errors import ChatError
from ..records import Attachment
from .language import say, tr
from .page import Page, Shown, Updates
from .render import plain

# Files of a question taken back (Undo) go back into the box from here: the box takes paths.
RETURNED_FILES = Path(tempfile.gettempdir()) / "chmocoder-returned-files"


def box_text(value: Any) -> str:
    """The text in the message box (a MultimodalTextbox gives {"text", "files"}; a restored draft, a string)."""
    if isinstance(value, dict):
        return str(value.get("text") or "")
    return value if isinstance(value, str) else ""


def box_files(value: Any, limits: Limits) -> list[Attachment]:
    """The files in the message box, read and checked: InvalidInput names a file that is too large,
    binary or not UTF-8, or says there are too many."""
    paths = [str(p) for p in (value.get("files") or [])] if isinstance(value, dict) else []
    check_count(len(paths), limits)
    return [decoded(Path(path).name, Path(path).read_bytes(), limits) for path in paths]


def box_value(text: str, files: list[Attachment] | None = None) -> Any:
    """What to put back into the box: the text, and the files written where the box can take them."""
    if not files:
        return text
    folder = RETURNED_FILES / secrets.token_hex(8)
    folder.mkdir(parents=True)
    paths = []
    for attachment in files:
        path = folder / attachment["name"]
        path.write_text(attachment["text"], encoding="utf-8")
        paths.append(str(path))
    return {"text": text, "files": paths}


def meter_line(service: ChatService, value: Any) -> str:
    """How much of the model's window the message and its files take, or why a file cannot go."""
    text = box_text(value)
    try:
        files = box_files(value, service.attachment_limits)
    except (ChatError, OSError) as exc:
        return f"⚠️ {plain(str(exc))}"
    if not text.strip() and not files:
        return ""
    size = service.measure(text, files)
    attached = ""
    if files:
        names = plain(file_names(files))
        one = len(files) == 1
        attached = (
            say(" · 1 file: {names}", names=names) if one else say(" · {n} files: {names}", n=len(files), names=names)
        )
    tokens, window = f"{size['tokens']:,}", f"{size['window']:,}"
    if size["tokens"] > size["room"]:
        told = (
            "⚠️ About {tokens} tokens{attached}: more than the model's window holds "
            "({window} including the answer). Shorten the message or attach less."
        )
        return say(told, tokens=tokens, attached=attached, window=window)
    share = f"{100 * size['tokens'] / size['window']:.0f}"
    told = "About {tokens} of {window} tokens of the model's window ({share}%){attached}"
    return say(told, tokens=tokens, window=window, share=share, attached=attached)


@dataclass
class Composer:
    row: gr.Row
    message: gr.MultimodalTextbox
    meter: gr.Markdown
    send: gr.Button
    stop: gr.Button
    settings_panel: gr.Accordion
    temperature: gr.Slider
    top_p: gr.Slider
    max_tokens: gr.Slider

    @property
    def submits(self) -> tuple[Any, ...]:
        """The events that send the message in the box."""
        return (self.message.submit, self.send.click)

    @property
    def generation(self) -> set[gr.Slider]:
        return {self.temperature, self.top_p, self.max_tokens}

    def options(self, values: dict[Any, Any], task: str, level: str, owner: str) -> TurnOptions:
        """A turn's options from the sliders (in an event's inputs), the chat's task and level, and the
        browser asking (its standing instructions apply)."""
        return TurnOptions(
            task,
            level,
            float(values[self.temperature]),
            float(values[self.top_p]),
            int(values[self.max_tokens]),
            owner=owner or None,
        )

    def question(self, service: ChatService, value: Any) -> tuple[str, list[Attachment]]:
        """The text and the read files of a message box's value."""
        return box_text(value), box_files(value, service.attachment_limits)

    def paint(self, shown: Shown) -> Updates:
        return {} if shown.message is None else {self.message: shown.message}


def wire(page: Page, composer: Composer) -> None:
    """The meter follows the box as the user types or attaches (not queued: it only counts tokens)."""
    composer.message.change(
        lambda value: meter_line(page.service, value),
        composer.message,
        composer.meter,
        queue=False,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )


def build(page: Page) -> Composer:
    settings = page.settings
    with gr.Row(elem_id="chmocoder-composer") as row:
        message = gr.MultimodalTextbox(
            placeholder=tr("Your message (Enter sends, Shift+Enter adds a line); drop or attach text files"),
            show_label=False,
            lines=1,
            max_lines=12,
            scale=8,
            file_count="multiple",
            sources=["upload"] if settings.max_attachments else [],
            submit_btn=False,
            # Long pasted code stays text: a MultimodalTextbox would turn it into a file at 1,000 characters.
            max_plain_text_length=settings.max_message_chars + 1,
            elem_id="chmocoder-input",
        )
        send = gr.Button(tr("Send"), variant="primary", scale=1, min_width=90)
        stop = gr.Button(tr("Stop"), variant="stop", scale=1, min_width=90, elem_id="chmocoder-stop")
    meter = gr.Markdown("", elem_id="chmocoder-meter")
    with gr.Accordion(tr("Generation settings"), open=False, elem_id="chmocoder-settings") as settings_panel:
        temperature = gr.Slider(*TEMPERATURE_RANGE, value=settings.temperature, step=0.05, label=tr("Temperature"))
        top_p = gr.Slider(0.05, 1.0, value=settings.top_p, step=0.05, label=tr("Top-p"))
        max_tokens = gr.Slider(
            1,
            settings.max_new_tokens_limit,
            value=settings.max_new_tokens,
            step=1,
            label=tr("Max new tokens"),
            elem_id="chmocoder-max-tokens",
        )
    composer = Composer(row, message, meter, send, stop, settings_panel, temperature, top_p, max_tokens)
    page.paints([message], composer.paint)
    return composer

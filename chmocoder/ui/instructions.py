"""Standing instructions: what this browser wants in every answer ("Python 3.12, type hints, pytest"),
kept in Redis with its owner token (ChatLibrary) and read by the chat service for each new answer.

The box is filled once, when the page loads, and written only by Save or Remove: a turn ending while
the user edits it never overwrites what they are typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.i18n import I18nData

from ..chat import MAX_INSTRUCTIONS_CHARS
from ..errors import ChatError
from .language import say, tr
from .page import Page, Updates

NOW = {"queue": False, "api_visibility": "private"}
PLACEHOLDER = "e.g. Python 3.12, type hints, pytest; short answers"


@dataclass
class StandingInstructions:
    panel: gr.Accordion
    text: gr.Textbox
    save: gr.Button
    remove: gr.Button
    note: gr.Markdown

    def shown(self, text: str, note: str) -> Updates:
        return {self.text: text, self.note: note, self.panel: gr.update(label=label(text))}


def label(text: str) -> I18nData:
    return tr("Standing instructions (on)" if text else "Standing instructions")


def build() -> StandingInstructions:
    with gr.Accordion(label(""), open=False, elem_id="chmocoder-instructions") as panel:
        text = gr.Textbox(
            placeholder=tr(PLACEHOLDER),
            show_label=False,
            lines=2,
            max_lines=6,
            max_length=MAX_INSTRUCTIONS_CHARS,
            elem_id="chmocoder-instructions-text",
        )
        with gr.Row():
            save = gr.Button(tr("Save"), size="sm", elem_id="chmocoder-instructions-save")
            remove = gr.Button(tr("Remove"), size="sm", elem_id="chmocoder-instructions-remove")
        note = gr.Markdown(
            tr("*Followed in every new answer, after the task and level.*"), elem_id="chmocoder-instructions-note"
        )
    return StandingInstructions(panel, text, save, remove, note)


def wire(page: Page, standing: StandingInstructions) -> None:
    library = page.library
    outputs = {standing.text, standing.note, standing.panel}

    def load(owner: str) -> Updates:
        try:
            return standing.shown(library.instructions(owner), "")
        except ChatError as exc:
            return {standing.note: f"*{exc}*"}

    def save(values: dict[Any, Any]) -> Updates:
        try:
            kept = library.set_instructions(values[page.owner], values[standing.text])
        except ChatError as exc:  # what was typed stays in the box
            return {standing.note: say("*Not saved: {why}*", why=exc)}
        return standing.shown(kept, say("*Saved: new answers follow them.*" if kept else "*Removed.*"))

    def remove(values: dict[Any, Any]) -> Updates:
        return save({page.owner: values[page.owner], standing.text: ""})

    page.loads(outputs, load)
    standing.save.click(save, {page.owner, standing.text}, outputs, **NOW)
    standing.text.submit(save, {page.owner, standing.text}, outputs, **NOW)
    standing.remove.click(remove, {page.owner}, outputs, **NOW)

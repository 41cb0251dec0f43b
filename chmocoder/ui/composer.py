"""The composer: the message box with Send and Stop, and the generation settings.

It only holds the components; the turns panel (chat.py) wires what they trigger, since a turn
also needs the chat's task and level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..chat import TEMPERATURE_RANGE, TurnOptions
from .page import Page, Shown, Updates


@dataclass
class Composer:
    row: gr.Row
    message: gr.Textbox
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

    def paint(self, shown: Shown) -> Updates:
        return {} if shown.message is None else {self.message: shown.message}


def build(page: Page) -> Composer:
    settings = page.settings
    with gr.Row(elem_id="chmocoder-composer") as row:
        message = gr.Textbox(
            placeholder="Your message (Enter sends, Shift+Enter adds a line)",
            show_label=False,
            lines=1,
            max_lines=12,
            scale=8,
            elem_id="chmocoder-input",
        )
        send = gr.Button("Send", variant="primary", scale=1, min_width=90)
        stop = gr.Button("Stop", variant="stop", scale=1, min_width=90, elem_id="chmocoder-stop")
    with gr.Accordion("Generation settings", open=False, elem_id="chmocoder-settings") as settings_panel:
        temperature = gr.Slider(*TEMPERATURE_RANGE, value=settings.temperature, step=0.05, label="Temperature")
        top_p = gr.Slider(0.05, 1.0, value=settings.top_p, step=0.05, label="Top-p")
        max_tokens = gr.Slider(
            1,
            settings.max_new_tokens_limit,
            value=settings.max_new_tokens,
            step=1,
            label="Max new tokens",
            elem_id="chmocoder-max-tokens",
        )
    composer = Composer(row, message, send, stop, settings_panel, temperature, top_p, max_tokens)
    page.paints([message], composer.paint)
    return composer

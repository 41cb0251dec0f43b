"""Try it yourself: the latest answer's Python code (or a Python file attached to the chat) in an
editor, run in the sandbox (stdout, stderr, how it ended), and one click to ask the chat about what the
run gave.

Runs share the sandbox's concurrency group with /run_code, not the model's: code runs while an
answer streams, and an endless loop holds only its own run, until the sandbox's time limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..attachments import is_python
from ..client_api import NO_SANDBOX, SANDBOX_QUEUE
from ..errors import ChatError, Unavailable
from ..runner import CodeRunner
from .chat import Turns
from .language import say, tr
from .page import Page, Shown, Updates
from .render import ask_text, latest_code, plain, run_line

NOW = {"queue": False, "api_visibility": "private"}
Values = dict[Any, Any]
ANSWER_CODE = "The latest answer's code"


def editor_sources(history: list[dict[str, Any]]) -> dict[str, str]:
    """What the editor can open, by the name the picker shows: the latest answer's code, then each
    Python file attached to the chat's questions (a file attached again under its name: the newest)."""
    sources: dict[str, str] = {}
    code = latest_code(history)
    if code:
        sources[ANSWER_CODE] = code
    for message in history:
        for attached in message.get("files") or []:
            if is_python(attached["name"]):
                sources[f"📎 {attached['name']}"] = attached["text"]
    return sources


@dataclass
class Workspace:
    runner: CodeRunner | None
    panel: gr.Accordion
    note: gr.Markdown
    source: gr.Dropdown  # what to open in the editor: the answer's code or an attached file
    sources: gr.State  # editor_sources() of the chat on screen
    editor: gr.Code
    run: gr.Button
    ask: gr.Button
    result: gr.Markdown
    stdout: gr.Textbox
    stderr: gr.Textbox
    last_run: gr.State  # {"code", "outcome"} of the run on screen
    message: gr.Textbox  # the composer's: where "Ask about this" puts its question

    def paint(self, shown: Shown) -> Updates:
        """A chat just opened or a turn just ended: its latest answer's code replaces the editor's
        (an answer without code leaves the editor as it is), and the picker offers its attached files."""
        if not shown.fresh:
            return {}
        sources = editor_sources(shown.history)
        code = sources.get(ANSWER_CODE, "")
        picker = gr.update(
            choices=list(sources), value=ANSWER_CODE if code else None, visible=len(sources) > int(bool(code))
        )
        offered = {self.source: picker, self.sources: sources}
        if not code:
            return offered
        return offered | {self.editor: code, self.result: "", self.stdout: "", self.stderr: "", self.last_run: None}

    def open_source(self, values: Values) -> Updates:
        """The picked code or file, in the editor in place of what it held."""
        code = (values[self.sources] or {}).get(values[self.source])
        if code is None:
            return {}
        return {self.editor: code, self.result: "", self.stdout: "", self.stderr: "", self.last_run: None}

    def availability(self) -> Updates:
        """Whether code can run now (read at each page load: the sandbox may start after the app)."""
        reason = NO_SANDBOX if self.runner is None else self.runner.reason
        note = say("*⚠️ {why}. Run is turned off.*", why=plain(reason[0].upper() + reason[1:])) if reason else ""
        return {self.note: note, self.run: gr.update(interactive=not reason)}

    def execute(self, values: Values) -> Updates:
        """Run the editor's code; what it printed, what it raised, and how it ended."""
        code = values[self.editor] or ""
        try:
            if self.runner is None:
                raise Unavailable(NO_SANDBOX)
            outcome = self.runner.run(code).as_dict()
        except ChatError as exc:
            refused = {self.result: f"⚠️ {plain(str(exc))}", self.stdout: "", self.stderr: ""}
            return refused | {self.last_run: None}
        return {
            self.result: run_line(outcome),
            self.stdout: outcome["stdout"],
            self.stderr: outcome["stderr"],
            self.last_run: {"code": code, "outcome": outcome},
        }

    def question(self, values: Values) -> Updates:
        """The chat message about the editor's code (and its last run, if that ran this code)."""
        code = values[self.editor] or ""
        if not code.strip():
            raise gr.Error("There is no code in the editor to ask about.")
        last = values[self.last_run] or {}
        outcome = last.get("outcome") if last.get("code") == code else None
        return {self.message: ask_text(code, outcome)}


def build(page: Page, runner: CodeRunner | None, message: gr.Textbox) -> Workspace:
    with gr.Accordion(tr("Try it yourself"), open=True, elem_id="chmocoder-workspace") as panel:
        note = gr.Markdown("", elem_id="chmocoder-workspace-note")
        source = gr.Dropdown(
            [], label=tr("Open in the editor"), visible=False, interactive=True, elem_id="chmocoder-editor-source"
        )
        sources = gr.State({})
        editor = gr.Code(
            language="python",
            interactive=True,
            lines=8,
            max_lines=30,
            label=tr("Python: the answer's code or your file, yours to edit and run"),
            elem_id="chmocoder-editor",
        )
        with gr.Row():
            run = gr.Button(tr("Run"), variant="primary", size="sm", elem_id="chmocoder-run")
            ask = gr.Button(tr("Ask about this in the chat"), size="sm", elem_id="chmocoder-ask")
        result = gr.Markdown("", elem_id="chmocoder-run-result")
        stdout = gr.Textbox(
            label=tr("Output"), lines=3, max_lines=16, interactive=False, buttons=["copy"], elem_id="chmocoder-stdout"
        )
        stderr = gr.Textbox(
            label=tr("Errors"), lines=2, max_lines=16, interactive=False, buttons=["copy"], elem_id="chmocoder-stderr"
        )
        last_run = gr.State(None)
    space = Workspace(runner, panel, note, source, sources, editor, run, ask, result, stdout, stderr, last_run, message)
    page.paints([source, sources, editor, result, stdout, stderr, last_run], space.paint)
    return space


def wire(demo: gr.Blocks, space: Workspace, turns: Turns) -> None:
    """Run in the sandbox's own queue; Ask sends through the chat's usual send path."""
    demo.load(space.availability, None, {space.note, space.run}, **NOW)
    workers = space.runner.workers if space.runner is not None else 1
    space.run.click(
        space.execute,
        {space.editor},
        {space.result, space.stdout, space.stderr, space.last_run},
        concurrency_id=SANDBOX_QUEUE,
        concurrency_limit=workers,
        api_visibility="private",
        show_progress_on=[space.result],
    )
    space.source.input(
        space.open_source,
        {space.source, space.sources},
        {space.editor, space.result, space.stdout, space.stderr, space.last_run},
        **NOW,
    )
    asked = space.ask.click(space.question, {space.editor, space.last_run}, {space.message}, **NOW)
    turns.send_on(asked.success)

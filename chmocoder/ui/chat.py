"""The chat: its header (title, task, level), the chatbot and the stats line, and every event that runs
a turn (send, example, regenerate, edit) or undoes one, streamed into the chatbot; Stop; the page load.

Thin: every rule of a turn is in ChatService. While an answer is checked or repaired, its status
("checking 2 of 3…", "fixing (round 1 of 2)") shows in italics under it; once the turn is over the
chat is read back from the store, verdict and earlier attempts included.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gradio as gr
from gradio.blocks import Block

from ..chat import Reply, TurnOptions
from ..client_api import MODEL_QUEUE
from ..errors import ChatError, UnknownChat
from ..gradio_errors import user_errors, warn
from ..prompts import DEFAULT_LEVEL, DEFAULT_TASK, LEVEL_LABELS, LEVELS, TASK_CHOICES, TASK_LABELS
from .composer import Composer, box_value
from .language import page_language, say, tr
from .pacing import paced
from .page import Page, Shown, Updates
from .render import (
    STOPPED_MARK,
    answer_content,
    as_text_part,
    feedback_values,
    header_line,
    is_file_part,
    open_row,
    part_text,
    question_content,
    question_text,
    stats_line,
)
from .render import to_chatbot as chatbot_messages
from .share_view import ShareView

# One starter per task: (task, what the card says, the message it sends).
EXAMPLES = [
    (
        "write",
        "a Fibonacci function with tests",
        "Write a Python function that returns the n-th Fibonacci number, with a few tests.",
    ),
    (
        "debug",
        "an IndexError in a list",
        "Why does this crash, and how do I fix it?\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```",
    ),
    (
        "explain",
        "a dict comprehension",
        "Explain what this does:\n```python\nsquares = {n: n * n for n in range(5) if n % 2}\n```",
    ),
    (
        "review",
        "an average function",
        "Review this function:\n```python\ndef avg(xs):\n    return sum(xs) / len(xs)\n```",
    ),
]

# The same starters on a Russian page: (what the card says, the message it sends), by position.
RUSSIAN_EXAMPLES = [
    (
        "функция Фибоначчи с тестами",
        "Напишите функцию на Python, которая возвращает n-е число Фибоначчи, и несколько тестов к ней.",
    ),
    (
        "IndexError в списке",
        "Почему это падает и как это исправить?\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```",
    ),
    (
        "генератор словаря",
        "Объясните, что делает этот код:\n```python\nsquares = {n: n * n for n in range(5) if n % 2}\n```",
    ),
    (
        "функция среднего",
        "Сделайте ревью этой функции:\n```python\ndef avg(xs):\n    return sum(xs) / len(xs)\n```",
    ),
]


def examples() -> list[tuple[str, str, str]]:
    """The starters as (task, what the card says, the message it sends), in the page's language."""
    if page_language() != "ru":
        return EXAMPLES
    return [(task, label, q) for (task, _, _), (label, q) in zip(EXAMPLES, RUSSIAN_EXAMPLES, strict=True)]


def example_cards() -> list[dict[str, str]]:
    return [{"display_text": f"{say(TASK_LABELS[t])}: {label}", "text": q} for t, label, q in examples()]


NOW = {"queue": False, "api_visibility": "private"}
MODEL_EVENT: dict[str, Any] = {"concurrency_id": MODEL_QUEUE, "api_visibility": "private"}
READY_JS = "() => { document.body.dataset.chmocoderReady = '1'; }"
WAITING_NOTICE = "*Your last message was still waiting for the model when the page closed; it is back in the box.*"
Values = dict[Any, Any]  # an event's inputs, by component


def on_screen(update: Any) -> list[dict[str, Any]]:
    """The Chatbot's messages in a painted update (a gr.update with its feedback) or a plain list."""
    return update["value"] if isinstance(update, dict) else update


def last_question_is(shown: Any, text: str) -> bool:
    """Whether `text` is the text of the last question of the chat on screen (so it reached the service)."""
    users = [m for m in on_screen(shown) if m["role"] == "user"]
    return bool(users) and question_text(users[-1]["content"]) == part_text(question_content(text))


def heading(shown: Shown) -> Any:
    """The chat's header line; a new chat's, which says only that, in the page's language."""
    if shown.meta is None:
        return tr("**New chat**")  # a label: it follows the switch at once
    return header_line(shown.meta, open_row(shown.chats, shown.chat_id))


@dataclass
class ChatPanel:
    row: gr.Row
    header: gr.Markdown
    task: gr.Dropdown
    level: gr.Dropdown
    notice: gr.Markdown
    chatbot: gr.Chatbot
    stats: gr.Markdown

    def paint(self, shown: Shown) -> Updates:
        meta = shown.meta or {}
        updates: Updates = {
            self.chatbot: gr.update(
                value=chatbot_messages(shown.history),
                feedback_value=feedback_values(shown.history),
                examples=example_cards(),
            ),
            self.task: meta.get("task", DEFAULT_TASK),
            self.level: meta.get("level", DEFAULT_LEVEL),
            self.header: heading(shown),
            self.notice: shown.notice,
        }
        return updates if shown.stats is None else updates | {self.stats: shown.stats}

    def paint_listing(self, shown: Shown) -> Updates:
        return {self.header: heading(shown)}


def build(page: Page) -> ChatPanel:
    with gr.Row(equal_height=True, elem_id="chmocoder-head") as row:
        header = gr.Markdown(tr("**New chat**"), elem_id="chmocoder-title", scale=2)
        task = gr.Dropdown(
            [(tr(TASK_LABELS[t]), t) for t in TASK_CHOICES],
            value=DEFAULT_TASK,
            label=tr("Task"),
            scale=1,
            min_width=160,
        )
        level = gr.Dropdown(
            [(tr(LEVEL_LABELS[lv]), lv) for lv in LEVELS],
            value=DEFAULT_LEVEL,
            label=tr("Level"),
            scale=1,
            min_width=140,
        )
    notice = gr.Markdown("", elem_id="chmocoder-notice")
    chatbot = gr.Chatbot(
        label=tr("Chat"),
        height=560,
        buttons=["copy"],
        editable="user",
        sanitize_html=True,
        allow_tags=False,
        examples=example_cards(),  # English here; each paint gives them in the page's language
        placeholder=tr("Ask for code, paste a bug, or ask what a piece of code does."),
        elem_id="chmocoder-chat",
    )
    stats = gr.Markdown("", elem_id="chmocoder-stats")
    panel = ChatPanel(row, header, task, level, notice, chatbot, stats)
    page.paints([chatbot, task, level, header, notice, stats], panel.paint)
    page.paints_listing(panel.paint_listing)
    return panel


@dataclass
class Turns:
    """Every event that runs a turn. Wire the panel's own events with `wire()`, other senders with
    `send_on()`, then `wire_stop()` once every such event is known."""

    page: Page
    chat: ChatPanel
    composer: Composer
    running: list[Any] = field(default_factory=list)

    @property
    def inputs(self) -> set[Block]:
        """What a turn reads: the open chat, its owner, its task and level, the generation settings."""
        page = self.page
        return {page.chat_id, page.owner, self.chat.task, self.chat.level, *self.composer.generation}

    @property
    def answer_inputs(self) -> set[Block]:
        """What answering an accepted message reads: the message, the chat on screen, and the above."""
        return {self.page.pending, self.chat.chatbot, *self.inputs}

    @property
    def outputs(self) -> set[Block]:
        return self.page.outputs

    @property
    def model_event(self) -> dict[str, Any]:
        # The queue position shows on the chat, not on every control.
        # As many turns at once as the model answers together; the rest wait with their position.
        limit = self.page.service.settings.parallel
        return MODEL_EVENT | {"concurrency_limit": limit, "show_progress_on": [self.chat.chatbot]}

    def options(self, values: Values) -> TurnOptions:
        return self.composer.options(values, values[self.chat.task], values[self.chat.level], values[self.page.owner])

    # -- sending: accept at once, then answer in the queue ------------------------------------------

    def check(self, values: Values) -> Updates:
        """Refuse a bad message (or file) beside the box, before anything is shown or queued."""
        service = self.page.service
        try:
            service.validate_message(*self.composer.question(service, values[self.composer.message]))
        except ChatError as exc:
            return {self.composer.message: gr.validate(False, str(exc))}
        return {self.composer.message: gr.validate(True, "")}

    def accept(self, values: Values) -> Updates:
        """Show the message at once and clear the box; the queued step answers it. Until that step
        starts (and saves the message), the browser keeps its text."""
        page, box = self.page, values[self.composer.message]
        try:
            text, files = self.composer.question(page.service, box)
        except ChatError:
            # The validator has already put the sentence under the box, but Gradio still runs this
            # step when the box holds files; nothing is accepted, so the answering step has nothing to do.
            return {page.pending: None}
        shown = [*values[self.chat.chatbot], {"role": "user", "content": question_content(text, files)}]
        return {
            self.composer.message: "",
            self.chat.chatbot: shown,
            page.pending: {"text": text, "files": files, "box": box},
            self.chat.stats: "",
            page.browser: page.remembered(values[page.owner], values[page.chat_id], text),
        }

    def respond(self, values: Values) -> Iterator[Updates]:
        page, pending, me = self.page, values[self.page.pending] or {}, values[self.page.owner]
        if not pending:
            return
        text, files, box = pending.get("text", ""), pending.get("files") or [], pending.get("box")
        try:
            current = values[page.chat_id] or page.service.new_chat(
                values[self.chat.task], values[self.chat.level], owner=me, first_question=text, first_files=files
            )
            start = page.service.send(current, text, self.options(values), files=files)
            listed = page.show_listing(current, me)
        except ChatError as exc:
            warn(exc)
            yield {self.composer.message: box, self.chat.chatbot: values[self.chat.chatbot][:-1]}
            return
        yield {page.chat_id: current, page.browser: page.remembered(me, current)} | listed
        yield from self.stream(start, current, me, values[self.chat.chatbot], box)

    def stream(
        self, start: Iterator[Reply], current: str, me: str, shown: list[dict[str, Any]], box: Any
    ) -> Iterator[Updates]:
        """Stream a turn into the chatbot, with its status under it while its code is checked or
        repaired; on a refusal, restore the message box and the stored chat."""
        chatbot, stats = self.chat.chatbot, self.chat.stats
        shown = [*shown, {"role": "assistant", "content": as_text_part("")}]
        try:
            reply: Reply | None = None
            with closing(start) as replies:
                for reply in paced(replies):
                    content = answer_content(reply.text, status=reply.status, attempts=reply.attempts)
                    shown[-1] = {"role": "assistant", "content": content}
                    yield {chatbot: shown, stats: ""}
            yield self.page.show(current, me, stats=stats_line(reply.stats) if reply else "", fresh=True)
        except ChatError as exc:
            warn(exc)
            yield self.page.show(current, me, message=box)

    def send_on(self, listener: Any) -> None:
        """Send the message box's text on `listener` (`message.submit`, `some_event.success`, ...):
        accept it at once, then answer it in the model's queue."""
        outputs = {self.composer.message, self.chat.chatbot, self.page.pending, self.chat.stats, self.page.browser}
        accepted = listener(
            self.accept,
            {self.composer.message, self.chat.chatbot, self.page.chat_id, self.page.owner},
            outputs,
            validator=self.check,
            show_progress="hidden",
            **NOW,
        )
        self.running.append(accepted.success(self.respond, self.answer_inputs, self.outputs, **self.model_event))

    # -- regenerate, edit, undo ----------------------------------------------------------------------

    @user_errors(fallback={})
    def regenerate(self, values: Values) -> Iterator[Updates]:
        current, service = values[self.page.chat_id], self.page.service
        start = service.regenerate(current, self.options(values))
        kept = chatbot_messages(service.history(current))
        last_user = max(i for i, m in enumerate(kept) if m["role"] == "user")
        yield from self.stream(start, current, values[self.page.owner], kept[: last_user + 1], None)

    def edit(self, values: Values, evt: gr.EditData) -> Iterator[Updates]:
        """Answer an edited question again. The Chatbot sends one edit per part of the question; only
        its text is edited (the files' parts are hidden while editing, and the files stay)."""
        if is_file_part(evt.previous_value):
            return
        current, me, service = values[self.page.chat_id], values[self.page.owner], self.page.service
        index = evt.index if isinstance(evt.index, int) else -1
        text = question_text(evt.value)
        try:
            start = service.edit(current, index, text, self.options(values))
            history = service.history(current)
            kept = chatbot_messages(history)[:index]
        except ChatError as exc:
            warn(exc)
            yield self.page.show(current, me)
            return
        edited = {"role": "user", "content": question_content(text, history[index].get("files"))}
        yield from self.stream(start, current, me, [*kept, edited], None)

    @user_errors(fallback={})
    def undo(self, values: Values) -> Updates:
        """Take back the last question and its answer; the question, files included, goes back into the box."""
        current, me = values[self.page.chat_id], values[self.page.owner]
        question = self.page.service.take_back(current)
        box = box_value(question["content"], question.get("files"))
        return self.page.show(current, me, message=box, stats="")

    def pick_example(self, evt: gr.SelectData) -> Updates:
        index = evt.index if isinstance(evt.index, int) else 0
        task, _, message = examples()[index]
        return {self.composer.message: message, self.chat.task: task}

    # -- after a turn: what was kept -------------------------------------------------------------------

    def show_saved(self, values: Values, note: str = "") -> Updates:
        """Show exactly what was kept (after Stop, the partial answer marked as stopped); a message
        that never reached the model (stopped while queued, or the queue was full) goes back into the box."""
        # A Stop also ends the turn as a failure: that handler (no note) must not wipe "Stopped.".
        pending = values[self.page.pending] or {}
        shown = self.page.show(values[self.page.chat_id], values[self.page.owner])
        text, files = pending.get("text", ""), pending.get("files")
        never_sent = bool(text or files) and not last_question_is(shown[self.chat.chatbot], text)
        if never_sent:
            shown[self.composer.message] = pending.get("box")
        # A Stop pressed after the answer finished stopped nothing: keep its stats line.
        answers = on_screen(shown[self.chat.chatbot])
        cut = bool(answers) and STOPPED_MARK in answers[-1]["content"]
        if note and (never_sent or cut):
            shown[self.chat.stats] = say(note)
        return shown

    # -- wiring ----------------------------------------------------------------------------------------

    def wire(self) -> None:
        chatbot = self.chat.chatbot
        for trigger in self.composer.submits:
            self.send_on(trigger)
        picked = chatbot.example_select(self.pick_example, None, {self.composer.message, self.chat.task}, **NOW)
        self.send_on(picked.success)
        self.running.append(chatbot.retry(self.regenerate, self.inputs, self.outputs, **self.model_event))
        self.running.append(chatbot.edit(self.edit, self.inputs, self.outputs, **self.model_event))
        chatbot.undo(self.undo, {self.page.chat_id, self.page.owner}, self.outputs, **NOW)
        chatbot.clear(self.start_new, {self.page.owner}, self.outputs, **NOW)

    def start_new(self, values: Values) -> Updates:
        return self.page.show("", values[self.page.owner], stats="")

    def wire_stop(self) -> None:
        """Stop cancels whatever turn runs or waits; after any turn ends badly, show what was kept."""
        saved_inputs = {self.page.chat_id, self.page.owner, self.page.pending}
        for event in self.running:
            event.failure(self.show_saved, saved_inputs, self.outputs, **NOW)
        stopped = partial(self.show_saved, note="Stopped.")
        self.composer.stop.click(None, cancels=self.running, api_visibility="private").then(
            stopped, saved_inputs, self.outputs, **NOW
        )


def wire_load(
    demo: gr.Blocks, page: Page, chat: ChatPanel, composer: Composer, share: ShareView, hide: list[Block], sidebar: Any
) -> None:
    """On load: open ?share= read-only, else ?chat=, else this browser's last chat; unknown ids get a notice."""

    def on_load(values: Values, request: gr.Request) -> Updates:
        stored = values[page.browser] if isinstance(values[page.browser], dict) else {}
        me = stored.get("owner") or secrets.token_urlsafe(32)
        token = request.query_params.get("share")
        if token:
            return share.show(page.library, token, hide, chat.notice, sidebar) | {page.owner: me}
        wanted = request.query_params.get("chat") or stored.get("chat") or ""
        try:
            if wanted:
                page.library.open_chat(wanted, me)
            shown = page.show(wanted, me, fresh=True) | {page.owner: me} | page.loaded(me)
            return shown | restored_draft(shown, stored, wanted, me)
        except UnknownChat:
            notice = say("*That chat has expired or does not exist; this is a new chat.*")
            return page.show("", me, notice=notice) | {page.owner: me} | page.loaded(me)
        except ChatError as exc:
            return {page.owner: me, chat.notice: f"*{exc}*"}

    def restored_draft(shown: Updates, stored: dict[str, Any], wanted: str, me: str) -> Updates:
        """A message that was still waiting in the queue when the page closed goes back into the box."""
        draft = stored.get("draft") or ""
        if not draft or wanted != (stored.get("chat") or "") or last_question_is(shown[chat.chatbot], draft):
            return {}
        return {
            composer.message: draft,
            page.browser: page.remembered(me, wanted, draft),
            chat.notice: say(WAITING_NOTICE),
        }

    outputs = page.outputs | page.load_outputs | share.outputs | set(hide) | {page.owner, sidebar}
    # Once the page shows what the load chose, <body data-chmocoder-ready> says so: what a test (or a
    # script driving the page) waits for, instead of guessing how long the load takes.
    demo.load(on_load, {page.browser}, outputs, **NOW).then(None, js=READY_JS, api_visibility="private")

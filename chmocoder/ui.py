"""The Gradio Blocks: the browser chat and the named gradio_client endpoints. Thin: every rule is in ChatService."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from .chat import ChatError, ChatService, Reply, TurnOptions, UnknownChat
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK, LEVEL_LABELS, LEVELS, TASK_LABELS, TASKS

log = logging.getLogger(__name__)

MODEL_QUEUE = "model"  # one concurrency group for everything that runs the model
STORAGE_KEY = "chmocoder-chat"

CSS = """
#chmocoder-stats { font-size: 0.8em; opacity: 0.7; min-height: 1.2em; }
#chmocoder-notice:empty { display: none; }
"""


def as_text_part(text: str) -> list[dict[str, str]]:
    """Chatbot content as a text part: plain strings go through inspect.cleandoc, which eats indentation."""
    return [{"type": "text", "text": text}]


def part_text(content: Any) -> str:
    """The Chatbot hands back content as a list of parts (or a string); flatten it to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(part_text(p) for p in content)
    return ""


def to_chatbot(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for m in messages:
        text = m.get("content", "")
        if m.get("stopped"):
            text += "\n\n*— stopped*" if text else "*— stopped before the first token*"
        shown.append({"role": m["role"], "content": as_text_part(text)})
    return shown


def stats_line(stats: dict[str, Any]) -> str:
    if not stats:
        return ""
    parts = [f"{stats.get('completion_tokens', 0)} tokens"]
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']:.1f} tokens/s")
    if stats.get("ttft_s") is not None:
        parts.append(f"first token after {stats['ttft_s']:.2f} s")
    if stats.get("dropped_messages"):
        parts.append(f"{stats['dropped_messages']} oldest messages left out to fit the context window")
    return " · ".join(parts)


def remember(chat_id: str) -> dict[str, str]:
    """What this browser keeps between visits: the id of the chat it had open."""
    return {"chat": chat_id}


def remembered(stored: Any) -> str:
    return str(stored.get("chat") or "") if isinstance(stored, dict) else ""


def build_ui(service: ChatService) -> gr.Blocks:
    with gr.Blocks(title="ChMOCoder") as demo:
        chat_id = gr.State("")
        # A dict, never a bare string: BrowserState does not write falsy values, so "" would not clear it.
        stored_chat = gr.BrowserState({"chat": ""}, storage_key=STORAGE_KEY)
        pending = gr.State("")

        with gr.Row(equal_height=True, elem_id="chmocoder-header"):
            gr.Markdown("## ChMOCoder\nA private coding assistant running on this machine.", scale=3)
            task = gr.Dropdown(
                [(TASK_LABELS[t], t) for t in TASKS], value=DEFAULT_TASK, label="Task", scale=1, min_width=160
            )
            level = gr.Dropdown(
                [(LEVEL_LABELS[lv], lv) for lv in LEVELS], value=DEFAULT_LEVEL, label="Level", scale=1, min_width=140
            )
            new_chat = gr.Button("New chat", scale=0, min_width=110, elem_id="chmocoder-new")
        notice = gr.Markdown("", elem_id="chmocoder-notice")
        chatbot = gr.Chatbot(
            label="Chat",
            height=560,
            buttons=["copy"],
            sanitize_html=True,
            allow_tags=False,
            placeholder="Ask for code, paste a bug, or ask what a piece of code does.",
            elem_id="chmocoder-chat",
        )
        stats = gr.Markdown("", elem_id="chmocoder-stats")
        with gr.Row():
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

        def on_load(stored: dict[str, str] | None, request: gr.Request) -> tuple[Any, ...]:
            """Open ?chat=<id>, else this browser's last chat; an unknown or expired id gets a fresh chat."""
            wanted = request.query_params.get("chat") or remembered(stored)
            if not wanted:
                return "", [], DEFAULT_TASK, DEFAULT_LEVEL, "", remember("")
            try:
                meta = service.info(wanted)
                service.wait_until_saved(wanted)  # a reload mid-answer: show what was kept
                history = service.history(wanted)
            except UnknownChat:
                notice = "*That chat has expired or does not exist; this is a new chat.*"
                return "", [], DEFAULT_TASK, DEFAULT_LEVEL, notice, remember("")
            except ChatError as exc:
                return "", [], DEFAULT_TASK, DEFAULT_LEVEL, f"*{exc}*", gr.skip()
            task_value, level_value = meta.get("task", DEFAULT_TASK), meta.get("level", DEFAULT_LEVEL)
            return wanted, to_chatbot(history), task_value, level_value, "", remember(wanted)

        demo.load(
            on_load,
            inputs=[stored_chat],
            outputs=[chat_id, chatbot, task, level, notice, stored_chat],
            api_visibility="private",
            queue=False,
        )

        def check(text: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """Refuse a bad message beside the box, before anything is shown or queued."""
            try:
                service.validate_message(text)
            except ChatError as exc:
                return [gr.validate(False, str(exc)), gr.validate(True, "")]
            return [gr.validate(True, ""), gr.validate(True, "")]

        def accept(text: str, history: list[dict[str, Any]]) -> tuple[Any, ...]:
            """Show the message at once and clear the box; the queued step below answers it."""
            history = [*history, {"role": "user", "content": as_text_part(text)}]
            return "", history, text, ""

        def respond(
            text: str, current: str, task_value: str, level_value: str, history: list[dict[str, Any]]
        ) -> Iterator[tuple[Any, ...]]:
            """Stream the answer; on any refusal, restore the message box and the stored transcript."""
            try:
                if not current:
                    current = service.new_chat(task_value, level_value)
                options = TurnOptions(task=task_value, level=level_value)
                shown = [*history, {"role": "assistant", "content": as_text_part("")}]
                with closing(service.send(current, text, options)) as replies:
                    reply: Reply | None = None
                    for reply in replies:
                        shown[-1] = {"role": "assistant", "content": as_text_part(reply.text)}
                        yield shown, current, remember(current), gr.skip(), ""
                    if reply is not None:
                        yield shown, current, remember(current), gr.skip(), stats_line(reply.stats)
            except ChatError as exc:
                gr.Warning(str(exc))
                restored: list[dict[str, Any]] = []
                if current:
                    try:
                        restored = to_chatbot(service.history(current))
                    except ChatError:
                        restored = history[:-1]
                yield restored, current, remember(current), text, ""

        submitted = [
            trigger(
                accept,
                [message, chatbot],
                [message, chatbot, pending, stats],
                validator=check,
                queue=False,
                show_progress="hidden",
                api_visibility="private",
            )
            .success(
                respond,
                [pending, chat_id, task, level, chatbot],
                [chatbot, chat_id, stored_chat, message, stats],
                concurrency_id=MODEL_QUEUE,
                concurrency_limit=1,
                api_visibility="private",
            )
            for trigger in (message.submit, send.click)
        ]

        def show_saved(current: str, text: str) -> tuple[Any, ...]:
            """After Stop, show exactly what was kept (the partial answer, marked as stopped); a
            message stopped while still queued was never saved, so it goes back into the box."""
            history: list[dict[str, Any]] = []
            if current:
                service.wait_until_saved(current)
                try:
                    history = service.history(current)
                except ChatError as exc:
                    return gr.skip(), str(exc), gr.skip()
            users = [m["content"] for m in history if m["role"] == "user"]
            unsent = bool(text) and (not users or users[-1] != text)
            return to_chatbot(history), "Stopped.", text if unsent else gr.skip()

        stop.click(None, cancels=submitted, api_visibility="private").then(
            show_saved, [chat_id, pending], [chatbot, stats, message], queue=False, api_visibility="private"
        )

        def start_new() -> tuple[Any, ...]:
            return "", [], remember(""), "", ""

        # The chatbot's own trash button means the same as "New chat": the stored chat stays intact.
        for trigger in (new_chat.click, chatbot.clear):
            trigger(
                start_new, outputs=[chat_id, chatbot, stored_chat, notice, stats], queue=False, api_visibility="private"
            )

        add_api(service)
    return demo


def add_api(service: ChatService) -> None:
    """Named endpoints for gradio_client. New optional parameters go after the existing ones."""

    def new_chat(task: str = DEFAULT_TASK, level: str = DEFAULT_LEVEL) -> str:
        """Start a chat and return its id.

        Args:
            task: what you want: "write" (write code), "debug" (find and fix a bug), "explain", or "review".
            level: the reader's level: "beginner", "intermediate" or "expert".
        Returns:
            The new chat's id; pass it to /chat and /history. Chats expire after a day without use.
        """
        try:
            return service.new_chat(task, level)
        except ChatError as exc:
            raise gr.Error(str(exc)) from None

    def chat(
        chat_id: str,
        message: str,
        task: str | None = None,
        level: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[str]:
        """Send a message to a chat and stream the answer.

        Args:
            chat_id: an id from /new_chat.
            message: your question or code (plain text, Markdown welcome).
            task: change the chat's task from this turn on ("write", "debug", "explain", "review").
            level: change the reader's level from this turn on ("beginner", "intermediate", "expert").
            temperature: sampling temperature, 0 (deterministic) to 2; default from the server.
            max_tokens: longest answer in tokens; default from the server.
        Returns:
            The answer so far, growing with every update; the last update is the whole answer.
        """
        options = TurnOptions(task=task, level=level, temperature=temperature, max_new_tokens=max_tokens)
        try:
            with closing(service.send(chat_id, message, options)) as replies:
                for reply in replies:
                    yield reply.text
        except ChatError as exc:
            raise gr.Error(str(exc)) from None

    def history(chat_id: str) -> list[dict[str, Any]]:
        """The chat's transcript, oldest first.

        Args:
            chat_id: an id from /new_chat.
        Returns:
            A list of {"role": "user" | "assistant", "content": text}; an answer cut short by Stop
            or a disconnect also has "stopped": true.
        """
        try:
            messages = service.history(chat_id)
        except ChatError as exc:
            raise gr.Error(str(exc)) from None
        return [
            {"role": m["role"], "content": m["content"], **({"stopped": True} if m.get("stopped") else {})}
            for m in messages
        ]

    gr.api(new_chat, api_name="new_chat")
    gr.api(chat, api_name="chat", concurrency_id=MODEL_QUEUE, concurrency_limit=1)
    gr.api(history, api_name="history")

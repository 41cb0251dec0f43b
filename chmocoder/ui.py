"""The Gradio Blocks page. Thin: every rule of a turn is in ChatService; this only wires components.

The browser keeps (gr.BrowserState) an owner token, the key to its list of chats, the id of the
chat it had open and, while a message waits in the queue, that message: it is not in Redis until
its turn starts, and a reload or a closed tab must not lose it. Everything else is read from Redis
through the service.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import gradio as gr

from .chat import ChatService, Reply, TurnOptions
from .client_api import MODEL_QUEUE, add_api
from .errors import ChatError, UnknownChat
from .library import ChatLibrary
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK, LEVEL_LABELS, LEVELS, TASK_LABELS, TASKS
from .settings import Settings

log = logging.getLogger(__name__)

STORAGE_KEY = "chmocoder"

# One starter per task: (task, what the card says, the message it sends).
EXAMPLES = [
    ("write", "a Fibonacci function with tests",
     "Write a Python function that returns the n-th Fibonacci number, with a few tests."),
    ("debug", "an IndexError in a list",
     "Why does this crash, and how do I fix it?\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```"),
    ("explain", "a dict comprehension",
     "Explain what this does:\n```python\nsquares = {n: n * n for n in range(5) if n % 2}\n```"),
    ("review", "an average function",
     "Review this function:\n```python\ndef avg(xs):\n    return sum(xs) / len(xs)\n```"),
]

CSS = """
#chmocoder-stats { font-size: 0.8em; opacity: 0.7; min-height: 1.2em; }
#chmocoder-notice:empty, #chmocoder-readonly:empty { display: none; }
#chmocoder-title p { margin: 0; }
#chmocoder-shared button[aria-label="Clear"] { display: none; }
"""

CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]+`)")


def safe_markdown(text: str) -> str:
    """Show HTML as text: escape it outside code, where Markdown would otherwise render it."""
    parts = CODE.split(text)
    return "".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))


def as_text_part(text: str) -> list[dict[str, str]]:
    """Chatbot content as a text part: plain strings go through inspect.cleandoc, which eats indentation."""
    return [{"type": "text", "text": safe_markdown(text)}]


def part_text(content: Any) -> str:
    """The Chatbot hands back content as a list of parts (or a string); flatten it to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(part_text(p) for p in content)
    return ""


STOPPED_MARK = {"type": "text", "text": "\n\n*— stopped*"}


def to_chatbot(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for m in messages:
        text = m.get("content", "")
        shown.append({"role": m["role"], "content": as_text_part(text)})
        if m.get("stopped"):
            shown[-1]["content"].append(STOPPED_MARK)
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


def header_line(meta: dict[str, str] | None) -> str:
    if not meta:
        return "**New chat**"
    title = html.escape(meta.get("title") or "New chat", quote=False)
    task = TASK_LABELS.get(meta.get("task", ""), "")
    level = LEVEL_LABELS.get(meta.get("level", ""), "")
    return f"**{title}** · {task} · {level}"


def export_links(url: str) -> str:
    """Plain links to the REST export, relative so they work under any root path."""
    if not url:
        return ""
    return (
        f'Download: <a href="{url}?format=markdown" download>Markdown</a> · '
        f'<a href="{url}?format=json" download>JSON</a>'
    )


def chat_choices(chats: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(c["title"] or "New chat", c["id"]) for c in chats]


def build_ui(service: ChatService, library: ChatLibrary, settings: Settings) -> gr.Blocks:
    with gr.Blocks(title="ChMOCoder") as demo:
        chat_id = gr.State("")
        owner = gr.State("")
        pending = gr.State("")
        # A dict, never a bare string: BrowserState does not write falsy values.
        browser = gr.BrowserState({"owner": "", "chat": ""}, storage_key=STORAGE_KEY)

        with gr.Sidebar(open=True, elem_id="chmocoder-sidebar") as sidebar:
            gr.Markdown("### ChMOCoder")
            new_chat = gr.Button("New chat", variant="primary", elem_id="chmocoder-new")
            chat_list = gr.Radio([], label="Your chats", elem_id="chmocoder-chats")
            with gr.Accordion("This chat", open=False, elem_id="chmocoder-manage"):
                title_box = gr.Textbox(label="Title", max_lines=1, elem_id="chmocoder-title-box")
                rename = gr.Button("Rename", size="sm")
                share = gr.Button("Share a read-only link", size="sm", elem_id="chmocoder-share")
                share_link = gr.Textbox(
                    label="Read-only link", interactive=False, buttons=["copy"], elem_id="chmocoder-share-link"
                )
                downloads = gr.HTML("", elem_id="chmocoder-downloads")
                delete = gr.Button("Delete this chat", variant="stop", size="sm", elem_id="chmocoder-delete")

        readonly = gr.Markdown("", elem_id="chmocoder-readonly")
        with gr.Row(equal_height=True) as options_row:
            header = gr.Markdown("**New chat**", elem_id="chmocoder-title", scale=2)
            task = gr.Dropdown(
                [(TASK_LABELS[t], t) for t in TASKS], value=DEFAULT_TASK, label="Task", scale=1, min_width=160
            )
            level = gr.Dropdown(
                [(LEVEL_LABELS[lv], lv) for lv in LEVELS], value=DEFAULT_LEVEL, label="Level", scale=1, min_width=140
            )
        notice = gr.Markdown("", elem_id="chmocoder-notice")
        chatbot = gr.Chatbot(
            label="Chat",
            height=560,
            buttons=["copy"],
            editable="user",
            sanitize_html=True,
            allow_tags=False,
            examples=[{"display_text": f"{TASK_LABELS[t]}: {label}", "text": q} for t, label, q in EXAMPLES],
            placeholder="Ask for code, paste a bug, or ask what a piece of code does.",
            elem_id="chmocoder-chat",
        )
        shared_view = gr.Chatbot(
            label="Shared chat", height=560, buttons=["copy"], sanitize_html=True, allow_tags=False, visible=False,
            elem_id="chmocoder-shared",
        )
        stats = gr.Markdown("", elem_id="chmocoder-stats")
        with gr.Row(elem_id="chmocoder-composer") as composer:
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
            temperature = gr.Slider(0.0, 2.0, value=settings.temperature, step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1.0, value=settings.top_p, step=0.05, label="Top-p")
            max_tokens = gr.Slider(
                1, settings.max_new_tokens_limit, value=settings.max_new_tokens, step=1, label="Max new tokens",
                elem_id="chmocoder-max-tokens",
            )

        chat_view = [chat_id, chatbot, task, level, header, chat_list, title_box, downloads, browser, share_link]

        def remembered(me: str, current: str, draft: str = "") -> dict[str, str]:
            """What the browser keeps: its owner token, its open chat, and a message not yet saved."""
            return {"owner": me, "chat": current} | ({"draft": draft} if draft else {})

        def was_sent(shown: dict[Any, Any], text: str) -> bool:
            """Whether `text` is the last question of the chat on screen (so it reached the service)."""
            users = [m for m in shown[chatbot] if m["role"] == "user"]
            return bool(users) and part_text(users[-1]["content"]) == safe_markdown(text)

        def view(current: str, me: str, notice_text: str = "") -> dict[Any, Any]:
            """Everything on screen that depends on which chat is open, read fresh from the store."""
            meta: dict[str, str] | None = None
            history: list[dict[str, Any]] = []
            if current:
                service.wait_until_saved(current)  # a reload or Stop mid-answer: show what was kept
                meta, history = service.chat(current)
            chats = library.list_chats(me)
            return {
                chat_id: current,
                chatbot: to_chatbot(history),
                task: (meta or {}).get("task", DEFAULT_TASK),
                level: (meta or {}).get("level", DEFAULT_LEVEL),
                header: header_line(meta),
                chat_list: gr.update(choices=chat_choices(chats), value=current or None),
                title_box: (meta or {}).get("title", ""),
                downloads: export_links(f"download/chats/{current}" if current else ""),
                browser: remembered(me, current),
                share_link: "",
                notice: notice_text,
            }

        def on_load(stored: Any, request: gr.Request) -> dict[Any, Any]:
            """Open ?share= read-only, else ?chat=, else this browser's last chat; unknown ids get a notice."""
            stored = stored if isinstance(stored, dict) else {}
            me = stored.get("owner") or secrets.token_urlsafe(32)
            token = request.query_params.get("share")
            if token:
                return shared(token) | {owner: me}
            wanted = request.query_params.get("chat") or stored.get("chat") or ""
            try:
                if wanted:
                    library.open_chat(wanted, me)
                shown = view(wanted, me) | {owner: me}
                draft = stored.get("draft") or ""
                if draft and wanted == (stored.get("chat") or "") and not was_sent(shown, draft):
                    shown |= {
                        message: draft,
                        browser: remembered(me, wanted, draft),
                        notice: "*Your last message was still waiting for the model when the page closed; "
                        "it is back in the box.*",
                    }
                return shown
            except UnknownChat:
                return view("", me, "*That chat has expired or does not exist; this is a new chat.*") | {owner: me}
            except ChatError as exc:
                return {owner: me, notice: f"*{exc}*"}

        def shared(token: str) -> dict[Any, Any]:
            hide = gr.update(visible=False)
            try:
                meta, history = library.shared(token)
            except ChatError as exc:
                return {notice: f"*{exc}*", composer: hide, chatbot: hide, options_row: hide, settings_panel: hide}
            return {
                readonly: f"{header_line(meta)} — a shared chat, read-only. "
                + export_links(f"download/shared/{token}"),
                shared_view: gr.update(value=to_chatbot(history), visible=True),
                chatbot: hide,
                composer: hide,
                options_row: hide,
                settings_panel: hide,
                sidebar: gr.update(open=False),
            }

        load_outputs = [
            *chat_view, owner, notice, message, readonly, shared_view, chatbot, composer, options_row, settings_panel,
            sidebar,
        ]
        demo.load(on_load, inputs=[browser], outputs=load_outputs, api_visibility="private", queue=False)

        # -- turns: send, example, regenerate, edit ---------------------------------------------

        def check(text: str, *others: Any) -> list[dict[str, Any]]:
            """Refuse a bad message beside the box, before anything is shown or queued (one verdict per input)."""
            try:
                service.validate_message(text)
            except ChatError as exc:
                return [gr.validate(False, str(exc))] + [gr.validate(True, "") for _ in others]
            return [gr.validate(True, "") for _ in (text, *others)]

        def accept(text: str, history: list[dict[str, Any]], current: str, me: str) -> tuple[Any, ...]:
            """Show the message at once and clear the box; the queued step answers it. Until that step
            starts (and saves the message), the browser keeps it."""
            shown = [*history, {"role": "user", "content": as_text_part(text)}]
            return "", shown, text, "", remembered(me, current, text)

        def stream(
            start: Iterator[Reply] | None, current: str, me: str, shown: list[dict[str, Any]], text: str
        ) -> Iterator[dict[Any, Any]]:
            """Stream a turn into the chatbot; on a refusal, restore the message box and the stored chat."""
            shown = [*shown, {"role": "assistant", "content": as_text_part("")}]
            try:
                assert start is not None
                reply: Reply | None = None
                with closing(start) as replies:
                    for reply in replies:
                        shown[-1] = {"role": "assistant", "content": as_text_part(reply.text)}
                        yield {chatbot: shown, stats: ""}
                done = view(current, me)
                yield done | {stats: stats_line(reply.stats) if reply else ""}
            except ChatError as exc:
                gr.Warning(str(exc))
                yield view(current, me) | {message: text}

        turn_outputs = [*chat_view, message, stats, notice]

        def options(task_value: str, level_value: str, temp: float, p: float, n: float) -> TurnOptions:
            return TurnOptions(task_value, level_value, float(temp), float(p), int(n))

        def respond(
            text: str, current: str, me: str, task_value: str, level_value: str, temp: float, p: float, n: float,
            history: list[dict[str, Any]],
        ) -> Iterator[dict[Any, Any]]:
            try:
                current = current or service.new_chat(task_value, level_value, owner=me)
                start = service.send(current, text, options(task_value, level_value, temp, p, n))
            except ChatError as exc:
                gr.Warning(str(exc))
                yield {message: text, chatbot: history[:-1]}
                return
            yield {chat_id: current, browser: remembered(me, current)}
            yield from stream(start, current, me, history, text)

        turn_inputs = [chat_id, owner, task, level, temperature, top_p, max_tokens]
        model_event: dict[str, Any] = {
            "concurrency_id": MODEL_QUEUE, "concurrency_limit": 1, "api_visibility": "private",
            "show_progress_on": [chatbot],  # the queue position shows on the chat, not on every control
        }
        accept_outputs = [message, chatbot, pending, stats, browser]
        running = []
        for trigger in (message.submit, send.click):
            accepted = trigger(
                accept, [message, chatbot, chat_id, owner], accept_outputs,
                validator=check, queue=False, show_progress="hidden", api_visibility="private",
            )
            running.append(accepted.success(respond, [pending, *turn_inputs, chatbot], turn_outputs, **model_event))

        def pick_example(evt: gr.SelectData) -> tuple[str, str]:
            index = evt.index if isinstance(evt.index, int) else 0
            return EXAMPLES[index][2], EXAMPLES[index][0]

        picked = chatbot.example_select(pick_example, None, [message, task], queue=False, api_visibility="private")
        accepted = picked.success(
            accept, [message, chatbot, chat_id, owner], accept_outputs, queue=False, api_visibility="private"
        )
        running.append(accepted.success(respond, [pending, *turn_inputs, chatbot], turn_outputs, **model_event))

        def regenerate(
            current: str, me: str, task_value: str, level_value: str, temp: float, p: float, n: float,
            history: list[dict[str, Any]],
        ) -> Iterator[dict[Any, Any]]:
            try:
                start = service.regenerate(current, options(task_value, level_value, temp, p, n))
                kept = to_chatbot(service.history(current))
            except ChatError as exc:
                gr.Warning(str(exc))
                return
            last_user = max(i for i, m in enumerate(kept) if m["role"] == "user")
            yield from stream(start, current, me, kept[: last_user + 1], "")

        running.append(chatbot.retry(regenerate, [*turn_inputs, chatbot], turn_outputs, **model_event))

        def edit(
            current: str, me: str, task_value: str, level_value: str, temp: float, p: float, n: float,
            history: list[dict[str, Any]], evt: gr.EditData,
        ) -> Iterator[dict[Any, Any]]:
            index = evt.index if isinstance(evt.index, int) else -1
            text = part_text(evt.value)
            try:
                start = service.edit(current, index, text, options(task_value, level_value, temp, p, n))
                kept = to_chatbot(service.history(current))[:index]
            except ChatError as exc:
                gr.Warning(str(exc))
                yield view(current, me)
                return
            yield from stream(start, current, me, [*kept, {"role": "user", "content": as_text_part(text)}], "")

        running.append(chatbot.edit(edit, [*turn_inputs, chatbot], turn_outputs, **model_event))

        def undo(current: str, me: str) -> dict[Any, Any]:
            try:
                text = service.undo(current)
            except ChatError as exc:
                gr.Warning(str(exc))
                return {}
            return view(current, me) | {message: text, stats: ""}

        chatbot.undo(undo, [chat_id, owner], turn_outputs, queue=False, api_visibility="private")

        def show_saved(current: str, me: str, text: str, note: str) -> dict[Any, Any]:
            """Show exactly what was kept (after Stop, the partial answer marked as stopped); a message
            that never reached the model (stopped while queued, or the queue was full) goes back into the box."""
            # A Stop also ends the turn as a failure: that handler (no note) must not wipe "Stopped.".
            shown = view(current, me)
            never_sent = bool(text) and not was_sent(shown, text)
            if never_sent:
                shown[message] = text
            # A Stop pressed after the answer finished stopped nothing: keep its stats line.
            cut = bool(shown[chatbot]) and shown[chatbot][-1]["content"][-1] == STOPPED_MARK
            if note and (never_sent or cut):
                shown[stats] = note
            return shown

        stopped, failed = gr.State("Stopped."), gr.State("")
        for event in running:
            event.failure(
                show_saved, [chat_id, owner, pending, failed], turn_outputs, queue=False, api_visibility="private"
            )
        stop.click(None, cancels=running, api_visibility="private").then(
            show_saved, [chat_id, owner, pending, stopped], turn_outputs, queue=False, api_visibility="private"
        )

        # -- the list of chats --------------------------------------------------------------------

        def start_new(me: str) -> dict[Any, Any]:
            return view("", me) | {stats: ""}

        for trigger in (new_chat.click, chatbot.clear):
            trigger(start_new, [owner], turn_outputs, queue=False, api_visibility="private")

        def open_chat(picked_id: str, me: str) -> dict[Any, Any]:
            try:
                return view(picked_id or "", me) | {stats: ""}
            except UnknownChat:
                return view("", me, "*That chat has expired.*")

        chat_list.input(open_chat, [chat_list, owner], turn_outputs, queue=False, api_visibility="private")

        def rename_chat(current: str, me: str, title: str) -> dict[Any, Any]:
            try:
                library.rename(current, me, title)
            except ChatError as exc:
                gr.Warning(str(exc))
            return view(current, me) if current else {}

        for trigger in (rename.click, title_box.submit):
            trigger(rename_chat, [chat_id, owner, title_box], turn_outputs, queue=False, api_visibility="private")

        def delete_open_chat(current: str, me: str) -> dict[Any, Any]:
            try:
                library.delete(current, me)
            except ChatError as exc:
                gr.Warning(str(exc))
                return {}
            return view("", me, "*Chat deleted.*") | {stats: ""}

        delete.click(
            delete_open_chat, [chat_id, owner], turn_outputs, queue=False, api_visibility="private",
            js="(c, o) => { if (!confirm('Delete this chat for good?')) throw new Error('cancelled'); return [c, o]; }",
        )

        def make_share(current: str, me: str) -> str:
            try:
                return library.share(current, me)
            except ChatError as exc:
                gr.Warning(str(exc))
                return ""

        # The server makes the token; the browser, which knows its own address, turns it into a link.
        share.click(make_share, [chat_id, owner], [share_link], queue=False, api_visibility="private").then(
            None, [share_link], [share_link], api_visibility="private",
            js="(t) => t ? window.location.origin + window.location.pathname + '?share=' + t : ''",
        )

        add_api(service, library)
    return demo

"""What the page shows, as pure functions of stored data: messages, stats, headers, links.

Chatbot content is always a list of text parts: a plain string goes through inspect.cleandoc, which
eats indentation. Text from a person or the model is Markdown whose HTML is shown as text.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..prompts import LEVEL_LABELS, TASK_LABELS

CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]+`)")

STOPPED_MARK = {"type": "text", "text": "\n\n*— stopped*"}


def safe_markdown(text: str) -> str:
    """Show HTML as text: escape it outside code, where Markdown would otherwise render it."""
    parts = CODE.split(text)
    return "".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))


def text_part(markdown: str) -> dict[str, str]:
    return {"type": "text", "text": markdown}


def as_text_part(text: str) -> list[dict[str, str]]:
    """Chatbot content as a text part: plain strings go through inspect.cleandoc, which eats indentation."""
    return [text_part(safe_markdown(text))]


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
    """Stored messages as the Chatbot shows them: one shown message per stored one (edit and
    regenerate rely on the indices matching)."""
    shown = []
    for m in messages:
        shown.append({"role": m["role"], "content": as_text_part(m.get("content", ""))})
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

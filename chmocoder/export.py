"""A chat as a file to download: Markdown to read, JSON to process."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .attachments import collapsed
from .practice_record import help_at, record_of
from .prompts import LEVEL_LABELS, TASK_LABELS
from .records import ChatMeta, StoredMessage

EXPORTED = ("role", "content", "files", "stopped", "interrupted", "stats", "verdict", "attempts", "feedback")
RATED = {"up": "👍 helpful", "down": "👎 not helpful"}
FORMATS = {"markdown": ("md", "text/markdown; charset=utf-8"), "json": ("json", "application/json")}


def _when(timestamp: str | float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M UTC")


def filename(meta: ChatMeta, fmt: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", meta.get("title") or "chat").strip("-").lower()[:50] or "chat"
    return f"chmocoder-{stem}.{FORMATS[fmt][0]}"


def to_markdown(meta: ChatMeta, messages: list[StoredMessage]) -> str:
    task = TASK_LABELS.get(meta.get("task", ""), meta.get("task", ""))
    level = LEVEL_LABELS.get(meta.get("level", ""), meta.get("level", ""))
    lines = [f"# {meta.get('title') or 'Untitled chat'}", "", f"*{task} · {level} · {_when(meta.get('created'))}*", ""]
    for message in messages:
        who = "You" if message["role"] == "user" else "ChMOCoder"
        lines += [f"## {who}", "", message.get("content", "")]
        lines += [line for f in message.get("files") or [] for line in ("", collapsed(f))]
        if message.get("interrupted"):
            lines += ["*(not answered: the server stopped before it could answer)*"]
        if message.get("stopped"):
            lines += ["", "*(stopped)*"]
        if message.get("verdict"):
            lines += ["", f"*Checked: {message['verdict'].get('summary', '')}*"]
            failing = message["verdict"].get("failing")
            if failing:
                lines += [f"*Failing check: `{failing.get('check', '')}` — {failing.get('detail', '')}*"]
        if message.get("feedback") in RATED:
            lines += ["", f"*Rated: {RATED[message['feedback']]}*"]
        for number, attempt in enumerate(message.get("attempts") or [], 1):
            verdict = (attempt.get("verdict") or {}).get("summary") or ("stopped" if attempt.get("stopped") else "")
            lines += [
                "",
                f"<details><summary>Earlier attempt {number}: {verdict}</summary>",
                "",
                attempt["content"],
                "",
                "</details>",
            ]
        lines.append("")
    return "\n".join(lines + _practice_markdown(meta))


def practice_results(meta: ChatMeta) -> list[dict[str, Any]]:
    """How each exercise of the chat's practice went, without its hidden tests or solution."""
    rows = []
    for entry in record_of(meta)["exercises"]:
        revealed = help_at(entry["rung"])
        rows.append(
            {
                "title": entry["title"],
                "origin": entry["origin"],
                "started": _when(entry.get("started")),
                "runs": entry["runs"],
                "best": f"{entry['best']}/{len(entry['tests'])}",
                "solved": entry["solved"],
                "help": entry.get("solved_with", revealed) if entry["solved"] else revealed,
            }
        )
    return rows


def _practice_markdown(meta: ChatMeta) -> list[str]:
    rows = practice_results(meta)
    if not rows:
        return []
    lines = ["## Practice", ""]
    for row in rows:
        done = f"solved ({row['help']})" if row["solved"] else f"not solved yet, best {row['best']}"
        lines.append(f"- **{row['title']}**: {done}, {row['runs']} runs")
    return [*lines, ""]


def to_json(meta: ChatMeta, messages: list[StoredMessage]) -> str:
    document = {
        "title": meta.get("title", ""),
        "task": meta.get("task"),
        "level": meta.get("level"),
        "created": _when(meta.get("created")),
        "updated": _when(meta.get("updated")),
        "messages": [{k: m[k] for k in EXPORTED if k in m} | {"at": _when(m.get("at"))} for m in messages],
        "practice": practice_results(meta),
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def render(meta: ChatMeta, messages: list[StoredMessage], fmt: str) -> str:
    return to_markdown(meta, messages) if fmt == "markdown" else to_json(meta, messages)

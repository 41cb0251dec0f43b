"""What the page shows, as functions of stored data: messages, verdicts, stats, headers, links (in the
page's language: chmocoder.ui.language.say reads it from the request being handled, like gettext).

Chatbot content is always a list of text parts: a plain string goes through inspect.cleandoc, which
eats indentation. Text from a person or the model is Markdown whose HTML is shown as text; the few
bits of HTML the page adds itself (the collapsed earlier attempts) are built here, around escaped text.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any

from ..attachments import collapsed
from ..chat_search import MAX_HITS, Hit
from ..checks import python_blocks
from ..fences import BACKTICKS, code_block
from ..prompts import LEVEL_LABELS, TASK_LABELS
from ..records import Attachment
from .language import page_language, say, say_status, span

CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]+`)")
FENCE_LINE = re.compile(r"^ {0,3}```", re.M)

FILE_CLASS = "chmocoder-file"  # a question's attached file, collapsed
FILE_PART = f'<details class="{FILE_CLASS}">'
FILES_ONLY = "*Attached files:*"  # the text part of a question without text: what Edit edits
STOPPED_MARK = {"type": "text", "text": "\n\n*— stopped*"}
INTERRUPTED_NOTE = (
    "*Not answered: the server stopped before it could answer. Press Regenerate (or edit the question) to ask again.*"
)
VERDICT_ICONS = {"verified": "✅", "failed": "❌"}
OTHER_ICON = "ℹ️"
# What "Ask about this" quotes of a run's output: its end, where the error is.
OUTPUT_TAIL_LINES = 30
OUTPUT_TAIL_CHARS = 3000


def safe_markdown(text: str) -> str:
    """Show HTML as text: escape it outside code, where Markdown would otherwise render it."""
    parts = CODE.split(text)
    return "".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))


def plain(text: str) -> str:
    """A short line of ours around outside words: no HTML, no stray emphasis."""
    return re.sub(r"([\\*_`\[\]])", r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def text_part(markdown: str) -> dict[str, str]:
    return {"type": "text", "text": markdown}


def as_text_part(text: str) -> list[dict[str, str]]:
    """Chatbot content as a text part: plain strings go through inspect.cleandoc, which eats indentation."""
    return [text_part(safe_markdown(text))]


def question_content(text: str, files: list[Attachment] | None = None) -> list[dict[str, str]]:
    """A question's parts: its text, then each attached file, collapsed. The text part comes first
    even when empty, since the Chatbot edits every part of a question and the page hides all but
    the first one's editor."""
    parts = as_text_part(text) if text.strip() or not files else [text_part(FILES_ONLY)]
    return parts + [text_part(collapsed(f, FILE_CLASS)) for f in files or []]


def is_file_part(content: Any) -> bool:
    return part_text(content).startswith(FILE_PART)


def question_text(content: Any) -> str:
    """A shown (or edited) question's text, without its files."""
    parts = content if isinstance(content, list) else [content]
    text = "".join(part_text(p) for p in parts if not is_file_part(p))
    return "" if text.strip() == FILES_ONLY else text


def part_text(content: Any) -> str:
    """The Chatbot hands back content as a list of parts (or a string); flatten it to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(part_text(p) for p in content)
    return ""


def inline_code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds."""
    text = " ".join(str(text).split())
    longest = max((len(run) for run in BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def closed_fences(text: str) -> str:
    """An answer cut short inside a code block, with the block closed (so nothing after it is code)."""
    return text + "\n```" if len(FENCE_LINE.findall(text)) % 2 else text


def verdict_markdown(verdict: dict[str, Any]) -> str:
    """One line under an answer: ✅ verified…, ❌ what still fails (the check and what it gave), ℹ️ not checked…"""
    status = verdict.get("status", "")
    line = f"{VERDICT_ICONS.get(status, OTHER_ICON)} {plain(verdict_summary(verdict))}"
    failing = verdict.get("failing") if status == "failed" else None
    if not failing:
        return line
    check, detail = str(failing.get("check", "")), str(failing.get("detail", "")).strip()
    line += f": {inline_code(check)}" if check else ""
    if "\n" in detail:
        return f"{line}\n\n{code_block(detail)}"
    return f"{line} — {inline_code(detail)}" if detail else line


def verdict_summary(verdict: dict[str, Any]) -> str:
    """The stored verdict's summary (Verdict.summary's words), or in Russian on a Russian page."""
    summary = verdict.get("summary") or verdict.get("status", "")
    status, passed, total = verdict.get("status", ""), verdict.get("passed", 0), verdict.get("total", 0)
    repairs = verdict.get("repairs", 0)
    if page_language() != "ru" or status not in ("verified", "failed", "not_checked"):
        return summary
    if status == "not_checked":
        return say("not checked: {reason}", reason=verdict.get("reason", ""))
    if status == "verified":
        told = "verified: {passed}/{total} checks passed" + (" after {repairs} repairs" if repairs else "")
    else:
        told = "{failing} of {total} checks" + (" still fail after {repairs} repairs" if repairs else " fail")
    return say(told, passed=passed, failing=total - passed, total=total, repairs=repairs)


def attempt_title(number: int, attempt: dict[str, Any]) -> str:
    """A draft a repair replaced (with its verdict), a repair that was not used, or one cut short."""
    if attempt.get("stopped"):
        return say("Attempt {n} — stopped before it was checked", n=number)
    if attempt.get("rejected"):
        return say("Attempt {n} — not used: {why}", n=number, why=attempt["rejected"])
    verdict = attempt.get("verdict")
    if verdict and verdict.get("summary"):
        return say("Earlier attempt {n} — {summary}", n=number, summary=verdict_summary(verdict))
    return say("Earlier attempt {n}", n=number)


def attempt_markdown(number: int, attempt: dict[str, Any]) -> str:
    """An earlier draft, collapsed: trusted <details> around the draft's escaped Markdown."""
    title = html.escape(attempt_title(number, attempt), quote=False)
    body = safe_markdown(closed_fences(str(attempt.get("content", ""))))
    return f'<details class="chmocoder-attempt"><summary>{title}</summary>\n\n{body}\n\n</details>'


def status_markdown(status: str) -> str:
    """What happens to an answer meanwhile ("checking 2 of 3…"), in italics under it."""
    return f"*⏳ {plain(say_status(status))}*"


def answer_content(
    text: str,
    *,
    stopped: bool = False,
    status: str = "",
    verdict: dict[str, Any] | None = None,
    attempts: list[dict[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """An answer's parts: its text, then whether it was stopped, what happens now, its verdict,
    and its earlier attempts (each collapsed)."""
    parts = as_text_part(text)
    if stopped:
        parts.append(STOPPED_MARK)
    if status:
        parts.append(text_part(status_markdown(status)))
    if verdict:
        parts.append(text_part(verdict_markdown(verdict)))
    parts += [text_part(attempt_markdown(i, a)) for i, a in enumerate(attempts or [], 1)]
    return parts


def to_chatbot(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored messages as the Chatbot shows them: one shown message per stored one (edit and
    regenerate rely on the indices matching)."""
    shown = []
    for m in messages:
        text = m.get("content", "")
        if m["role"] != "assistant":
            shown.append({"role": m["role"], "content": question_content(text, m.get("files"))})
            continue
        if m.get("interrupted"):
            shown.append({"role": "assistant", "content": as_text_part(INTERRUPTED_NOTE)})
            continue
        content = answer_content(
            text, stopped=bool(m.get("stopped")), verdict=m.get("verdict"), attempts=m.get("attempts")
        )
        shown.append({"role": "assistant", "content": content})
    return shown


def feedback_values(messages: list[dict[str, Any]]) -> list[str | None]:
    """The Chatbot's `feedback_value`: per answer, in order, the thumb its reader chose (or None)."""
    shown = {"up": "Like", "down": "Dislike"}
    return [shown.get(m.get("feedback", "")) for m in messages if m["role"] == "assistant"]


def stats_line(stats: dict[str, Any]) -> str:
    if not stats:
        return ""
    parts = [say("{n} tokens", n=stats.get("completion_tokens", 0))]
    if stats.get("picked_task") in TASK_LABELS:
        parts.insert(0, say("Auto: {task}", task=say(TASK_LABELS[stats["picked_task"]])))
    if stats.get("tokens_per_s"):
        parts.append(say("{rate} tokens/s", rate=f"{stats['tokens_per_s']:.1f}"))
    if stats.get("ttft_s") is not None:
        parts.append(say("first token after {s} s", s=f"{stats['ttft_s']:.2f}"))
    if stats.get("model_passes", 1) > 1:
        parts.append(say("{n} model passes", n=stats["model_passes"]))
    if stats.get("checks_s"):
        parts.append(say("checks {s} s", s=f"{stats['checks_s']:.1f}"))
    if stats.get("dropped_messages"):
        names = ", ".join(stats.get("dropped_files") or [])
        files = say(" (with the files {names})", names=names) if names else ""
        told = "{n} oldest messages{files} left out to fit the context window"
        parts.append(say(told, n=stats["dropped_messages"], files=files))
    return " · ".join(parts)


def header_line(meta: dict[str, str] | None, row: dict[str, Any] | None = None) -> str:
    """Title, task and level; with the chat's row in the list, when it expires."""
    if not meta:
        return say("**New chat**")
    title = html.escape(meta.get("title") or say("New chat"), quote=False)
    task = say(TASK_LABELS.get(meta.get("task", ""), ""))
    level = say(LEVEL_LABELS.get(meta.get("level", ""), ""))
    line = f"**{title}** · {task} · {level}"
    if row is not None and row.get("expires_at"):
        line += say(" · expires in {span}", span=span(max(60, row["expires_at"] - time.time())))
    return line


def export_links(url: str) -> str:
    """Plain links to the REST export, relative so they work under any root path."""
    if not url:
        return ""
    return (
        f'{say("Download:")} <a href="{url}?format=markdown" download>Markdown</a> · '
        f'<a href="{url}?format=json" download>JSON</a>'
    )


GUEST_MARK = " · opened by link"


def chat_choices(chats: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The sidebar's list; a chat someone else started (opened by its id) says so."""
    untitled, guest = say("New chat"), say(GUEST_MARK)  # said once, not once per chat
    return [((c["title"] or untitled) + (guest if c.get("guest") else ""), c["id"]) for c in chats]


def open_row(chats: list[dict[str, Any]], chat_id: str) -> dict[str, Any] | None:
    """The open chat's row in the sidebar's list (None for a new chat)."""
    return next((c for c in chats if c["id"] == chat_id), None) if chat_id else None


def expiry_note(row: dict[str, Any] | None, now: float | None = None) -> str:
    """When the open chat expires, and why then."""
    if row is None or not row.get("expires_at"):
        return ""
    left = row["expires_at"] - (time.time() if now is None else now)
    keep = span(row["keep_s"])
    if left < 60:
        return say("*Expires in less than a minute: it is kept {keep} after its last message.*", keep=keep)
    return say("*Expires in {span}: it is kept {keep} after its last message.*", span=span(left), keep=keep)


def keep_choices(seconds: list[int]) -> list[tuple[str, int]]:
    return [(say("{span} after the last message", span=span(s)), s) for s in seconds]


def hit_choices(hits: list[Hit]) -> list[tuple[str, str]]:
    """A search's results in the sidebar's list: the title, and the matching line unless it is the title."""
    untitled = say("New chat")
    return [((h.title or untitled) + ("" if h.role == "title" else f" — {h.line}"), h.chat_id) for h in hits]


def search_note(query: str, found: int) -> str:
    if not found:
        return say("*No chat holds every word of “{query}”.*", query=html.escape(query.strip(), quote=False))
    if found == 1:
        return say("*1 chat found (newest first).*")
    most = found == MAX_HITS
    told = "*{found} chats found (at most newest first).*" if most else "*{found} chats found (newest first).*"
    return say(told, found=found)


# -- the workspace ------------------------------------------------------------------------------


def runnable(block: str) -> str:
    """A `>>>` session as the script it stands for (its expected output kept as comments)."""
    if not block.lstrip().startswith(">>>"):
        return block
    lines = []
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            lines.append(stripped[4:])
        elif stripped:
            lines.append(f"# {stripped}")
    return "\n".join(lines)


def answer_code(text: str) -> str:
    """The Python code of an answer, its blocks joined by blank lines."""
    return "\n\n".join(runnable(block) for block in python_blocks(text))


def latest_code(messages: list[dict[str, Any]]) -> str:
    """The Python code of the chat's latest answer ("" when it has none)."""
    answers = [m for m in messages if m.get("role") == "assistant"]
    return answer_code(str(answers[-1].get("content", ""))) if answers else ""


def run_line(outcome: dict[str, Any]) -> str:
    """How a run ended: "exit 0 · 0.04 s", or the sandbox's word on a limit it hit."""
    took = say("{s} s", s=f"{outcome.get('duration_s') or 0:.2f}")
    status, code, message = outcome.get("status"), outcome.get("exit_code"), outcome.get("message") or ""
    if status in ("ok", "error") and code is not None:
        icon = "✅" if code == 0 else "❌"
        return say("{icon} exit {code} · {took}", icon=icon, code=code, took=took) + (
            f" · {plain(message)}" if message else ""
        )
    return f"⚠️ {plain(message or str(status))} · {took}"


def tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]
    kept = "\n".join(lines)
    return kept if len(kept) <= OUTPUT_TAIL_CHARS else "…" + kept[-OUTPUT_TAIL_CHARS:]


def ask_text(code: str, outcome: dict[str, Any] | None) -> str:
    """A chat message about the workspace's code and what its last run gave."""
    source = code_block(code.strip("\n"), "python")
    if not outcome:
        return f"Can you check this code?\n{source}"
    failed = outcome.get("exit_code") != 0 or outcome.get("status") != "ok"
    if failed:
        shown = outcome.get("stderr") or outcome.get("message") or outcome.get("stdout") or "(no output)"
    else:
        shown = outcome.get("stdout") or "(no output)"
    intro = "This fails with:" if failed else "This prints:"
    return f"{intro}\n{code_block(tail(shown))}\nfor this code:\n{source}"

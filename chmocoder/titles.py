"""A chat's title from its first question: the first line of plain text, as a person would name it.

Questions often open with pasted code or Markdown; a title of "```python def aver…" or "## **Bug**"
tells nobody anything in the sidebar. Code is used only when the question is nothing but code.
"""

from __future__ import annotations

import re

from .records import Attachment, StoredMessage

TITLE_CHARS = 60
UNTITLED = "New chat"

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) and ![alt](src) keep their text
_LINE_MARKS = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)+")  # headings, quotes, list items
# Emphasis and inline code, but not inside words: snake_case and 2*3*4 keep their marks.
_EMPHASIS = re.compile(r"(?<![\w*_~`])(\*\*|__|\*|_|~~|`)(?=\S)(.+?)(?<=\S)\1(?![\w*_~`])")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


def plain_line(line: str) -> str:
    """One line of Markdown as plain text: no heading, quote or list marks, emphasis, links or backticks."""
    if _RULE.match(line):
        return ""
    text = _LINE_MARKS.sub("", line)
    text = _LINK.sub(r"\1", text)
    for _ in range(3):  # nested emphasis, e.g. **`code`**
        text = _EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


def _lines(message: str) -> tuple[list[str], list[str]]:
    """The message's lines outside code fences and inside them."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in message.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            rest = _FENCE.sub("", line).strip()  # "```python def f():" written on one line
            if fenced and " " in rest:
                code.append(rest.split(" ", 1)[1])
            continue
        (code if fenced else prose).append(line)
    return prose, code


def shorten(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def title_from(message: str) -> str:
    """The first line of plain text; else the first line of code; else "New chat"."""
    prose, code = _lines(message)
    for line in prose:
        if text := plain_line(line):
            return shorten(text)
    for line in code:
        if text := " ".join(line.split()):
            return shorten(text)
    return UNTITLED


def title_of(text: str, files: list[Attachment] | None = None) -> str:
    """A question's title: from its text; a question that is only files is named after them."""
    if text.strip() or not files:
        return title_from(text)
    return shorten(", ".join(f["name"] for f in files))


def question_title(question: StoredMessage) -> str:
    return title_of(question["content"], question.get("files"))

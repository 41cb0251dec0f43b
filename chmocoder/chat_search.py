"""Finding chats by the words in them: every word of the query, in any case, anywhere in the chat's
title or messages; each hit shows the line that matches best, so the user sees why it was found.

Pure functions over what the store returns: no index to keep in step with writes, expiry and
deletion. Scanning a few hundred chats is fast enough (bench/search.py measures it): a chat is first
looked for in its stored JSON as it is, and only one that may match is decoded and read line by line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_HITS = 50
MAX_QUERY_CHARS = 200
LINE_CHARS = 90
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Hit:
    chat_id: str
    title: str
    line: str  # the best-matching line, cut around its first match
    role: str  # where that line is: "title", "user" or "assistant"
    updated: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.chat_id, "title": self.title, "line": self.line, "role": self.role, "updated": self.updated}


def query_words(query: str) -> list[str]:
    """The words to look for, case-folded; duplicates dropped."""
    words = [w.casefold() for w in _WORD.findall(query[:MAX_QUERY_CHARS])]
    return list(dict.fromkeys(words))


def excerpt(line: str, word: str, width: int = LINE_CHARS) -> str:
    """`line` cut to about `width` characters around the first place `word` occurs."""
    line = " ".join(line.split())
    if len(line) <= width:
        return line
    at = max(0, line.casefold().find(word) - width // 3)
    cut = line[at : at + width]
    return ("…" if at else "") + cut + ("…" if at + width < len(line) else "")


def best_line(words: list[str], lines: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (role, line) that best shows why the chat was found: the line holding the most of the
    words the title does not already show (the earliest among equals), cut around the first of them.
    The title itself when it holds every word."""
    title = lines[0][1].casefold() if lines and lines[0][0] == "title" else ""
    if all(w in title for w in words):
        return "title", lines[0][1]
    wanted = [w for w in words if w not in title]
    best: tuple[int, str, str] | None = None
    for role, line in lines[1 if title else 0 :]:
        folded = line.casefold()
        count = sum(1 for w in wanted if w in folded)
        if count and (best is None or count > best[0]):
            best = (count, role, line)
            if count == len(wanted):
                break
    if best is None:
        return None
    _, role, line = best
    first = min((w for w in wanted if w in line.casefold()), key=lambda w: line.casefold().find(w))
    return role, excerpt(line, first)


def search(query: str, chats: list[dict[str, Any]], transcripts: dict[str, list[str]]) -> list[Hit]:
    """The chats (as listed, newest first) holding every word of `query`, at most MAX_HITS;
    `transcripts`: each chat's messages as stored (JSON text)."""
    words = query_words(query)
    if not words:
        return []
    # JSON escapes quotes and backslashes (and, in chats written with ensure_ascii, all non-ASCII):
    # such words are looked for only in decoded text.
    plain = [w for w in words if w.isascii() and '"' not in w and "\\" not in w]
    hits: list[Hit] = []
    for chat in chats:
        title = chat.get("title") or ""
        stored = transcripts.get(chat["id"], [])
        raw = "\n".join([title, *stored]).casefold()
        if not all(w in raw for w in plain):
            continue  # JSON's keys may match a word, never hide one: only a chat that may match is decoded
        messages = [json.loads(item) for item in stored]
        text = "\n".join([title, *(str(m.get("content") or "") for m in messages)]).casefold()
        if not all(w in text for w in words):
            continue
        lines = [("title", title)] + [
            (m.get("role", ""), line) for m in messages for line in str(m.get("content") or "").splitlines()
        ]
        found = best_line(words, lines)
        if found is not None:
            hits.append(Hit(chat["id"], title, found[1], found[0], float(chat.get("updated") or 0)))
            if len(hits) == MAX_HITS:
                break
    return hits

"""The "Auto" task: which task a message asks for, read from its words and its code.

Most people do not open a menu before asking; they paste a traceback and ask why. A task picked from
the message gives them the right rules (a debug answer names the bug and is checked against their
failing example) without asking. Plain rules, no model pass: instant, predictable, and the user sees
what was picked and can still choose.
"""

from __future__ import annotations

import re

AUTO = "auto"

_FENCED = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.S | re.M)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \".*\", line \d+|^\w+(Error|Exception): ", re.M)
# Words about code that misbehaves.
_FAILING = re.compile(
    r"\b(bugs?|buggy|fix|fixed|crash(es|ed|ing)?|fail(s|ed|ing)?|broken|wrong|doesn'?t work|does not work"
    r"|not working|instead of|expected\b.*\bbut\b|hangs?|infinite loop|never (ends|stops|finishes))\b",
    re.I,
)
# An error named without anything failing: "write a function that raises ValueError" still wants code.
_ERROR_WORDS = re.compile(r"\b(\w*Error|\w*Exception|errors?|exceptions?|traceback)\b")
_WRITE = re.compile(
    r"^\s*(please\s+)?((can|could|would) you\s+)?(please\s+)?(write|create|implement|make|generate|build"
    r"|code|give me|add|show me how to)\b",
    re.I,
)
_REVIEW = re.compile(
    r"\b(review|feedback|improve|refactor|clean(\s|-)?up|idiomatic|pythonic|best practices?|code smells?"
    r"|make (this|it) (better|cleaner|faster|simpler|shorter|readable))\b",
    re.I,
)
_EXPLAIN = re.compile(
    r"^\s*(explain|what (does|is|are)|how does|walk me through|tell me (what|how))\b"
    r"|\b(explain|what does (this|it|the following)|how does (this|it) work|what is the (meaning|purpose))\b",
    re.I,
)


def pick_task(message: str) -> str:
    """write, debug, explain or review for `message` (see the module's docstring).

    A traceback or words about failing mean debug, even beside "explain" ("explain why this crashes"
    wants the crash fixed); a request that opens with "write", "create", ... is write, whatever errors it
    names; then an error named means debug, then review words, then explain words; anything else, with
    or without code, asks for code to be written."""
    prose = _FENCED.sub(" ", message)
    if _TRACEBACK.search(message) or _FAILING.search(prose):
        return "debug"
    if _WRITE.search(prose):
        return "write"
    if _ERROR_WORDS.search(prose):
        return "debug"
    if _REVIEW.search(prose):
        return "review"
    if _EXPLAIN.search(prose):
        return "explain"
    return "write"

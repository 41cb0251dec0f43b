"""Fenced Markdown code blocks that stay whole whatever the text inside holds."""

from __future__ import annotations

import re

BACKTICKS = re.compile(r"`+")


def code_block(text: str, language: str = "") -> str:
    """`text` as a fenced Markdown block, whatever fences it holds (the fence outgrows its backticks)."""
    longest = max((len(run) for run in BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"

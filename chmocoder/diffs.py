"""A unified diff of the code a user pasted against the answer's fix, so the change shows at a glance."""

from __future__ import annotations

import difflib

from .checks import python_blocks

MIN_SIMILARITY = 0.3  # below this the answer's block is new code, not a fix of the user's
MAX_DIFF_LINES = 120


def _similarity(original: str, candidate: str) -> float:
    """How much of the user's code the candidate keeps: the share of their lines it still has."""
    lines = {line.strip() for line in original.splitlines() if line.strip()}
    kept = {line.strip() for line in candidate.splitlines()}
    return len(lines & kept) / len(lines) if lines else 0.0


def _closest(original: str, candidates: list[str]) -> tuple[str, float]:
    scored = [(c, _similarity(original, c)) for c in candidates]
    return max(scored, key=lambda pair: pair[1]) if scored else ("", 0.0)


def fix_diff(message: str, answer: str) -> str:
    """A Markdown section with a `diff` block, or "" when the answer does not change pasted code."""
    pasted = [b for b in python_blocks(message) if not b.lstrip().startswith(">>>")]
    if not pasted:
        return ""
    original = "\n\n".join(pasted)
    fixed, similarity = _closest(original, [b for b in python_blocks(answer) if not b.lstrip().startswith(">>>")])
    if similarity < MIN_SIMILARITY or fixed.strip() == original.strip():
        return ""
    lines = list(
        difflib.unified_diff(original.splitlines(), fixed.splitlines(), "your code", "the fix", lineterm="", n=2)
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
    return "\n\n**Changes to your code**\n```diff\n" + "\n".join(lines) + "\n```"

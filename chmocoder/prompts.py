"""The system prompt: what the user wants done (task) and how much they already know (level)."""

from __future__ import annotations

import re
from typing import Literal, get_args

Task = Literal["write", "debug", "explain", "review"]
# What a chat or a request may ask for: a task, or "auto", the task picked from each message
# (chmocoder.task_picker).
TaskChoice = Literal["auto", "write", "debug", "explain", "review"]
Level = Literal["beginner", "intermediate", "expert"]

TASKS: tuple[str, ...] = get_args(Task)
TASK_CHOICES: tuple[str, ...] = get_args(TaskChoice)
LEVELS: tuple[str, ...] = get_args(Level)
DEFAULT_TASK: TaskChoice = "auto"
FALLBACK_TASK: Task = "write"  # the rules for a task not known (or not yet picked)
DEFAULT_LEVEL: Level = "intermediate"

TASK_LABELS: dict[str, str] = {
    "auto": "Auto",
    "write": "Write code",
    "debug": "Debug and fix",
    "explain": "Explain code",
    "review": "Review code",
}
LEVEL_LABELS: dict[str, str] = {
    "beginner": "Beginner",
    "intermediate": "Intermediate",
    "expert": "Expert",
}

BASE = (
    "You are ChMOCoder, a careful coding assistant. Put all code in fenced Markdown code blocks "
    "tagged with their language, keep indentation exact, and never invent APIs: say so when you "
    "are unsure."
)

TASK_RULES: dict[str, str] = {
    "write": (
        "The user wants code written. Give complete, working code that runs as shown, including "
        "imports; end the code block with two or three `assert` lines that show what it returns "
        "for typical and edge inputs. Then add a short note on how to use it and the edge cases."
    ),
    "debug": (
        "The user wants a bug found and fixed. First name the bug and the line where it is, then "
        "explain why it happens, then give the corrected code in full, ending with `assert` lines that "
        "show the failing example now gives the right result."
    ),
    "explain": (
        "The user wants code explained. Say what the code does as a whole, then walk through it "
        "part by part, pointing out anything surprising."
    ),
    "review": (
        "The user wants a code review. List concrete problems in order of importance (bugs, "
        "security, performance, readability), each with the fix, then show the improved code."
    ),
}

LEVEL_RULES: dict[str, str] = {
    "beginner": (
        "The reader is a beginner: use plain words, define every technical term the first time, "
        "prefer simple constructs over clever ones, and comment the code generously."
    ),
    "intermediate": (
        "The reader is an intermediate programmer: be clear and practical, explain the non-obvious "
        "parts, and skip the basics."
    ),
    "expert": (
        "The reader is an expert: be concise and precise, skip basics, mention trade-offs, "
        "complexity and idiomatic alternatives."
    ),
}


STANDING = "The user's standing instructions, for every answer unless this question asks otherwise:"


# The answer's language follows the question's: a rule for each language other than English.
LANGUAGE_RULES: dict[str, str] = {
    "ru": (
        "The user writes in Russian: write the whole answer, explanations and code comments, in Russian; "
        "keep code, names and error messages as they are. Отвечай по-русски."
    ),
}
CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.S)


def question_language(text: str) -> str:
    """ "ru" when the question's prose (code left out) has more Cyrillic letters than Latin ones, else "en"."""
    prose = CODE.sub(" ", text)
    cyrillic = len(re.findall(r"[а-яё]", prose, re.I))
    return "ru" if cyrillic > len(re.findall(r"[a-z]", prose, re.I)) else "en"


def system_prompt(task: str, level: str, instructions: str = "", question: str = "") -> str:
    """Compose the system prompt; unknown values fall back to the defaults rather than failing a turn.
    The answer is in the question's language; the user's standing instructions come last, after the
    task, level and language rules they refine."""
    parts = [BASE, TASK_RULES.get(task, TASK_RULES[FALLBACK_TASK]), LEVEL_RULES.get(level, LEVEL_RULES[DEFAULT_LEVEL])]
    language = LANGUAGE_RULES.get(question_language(question))
    rules = " ".join([*parts, language] if language else parts)
    return f"{rules}\n\n{STANDING}\n{instructions.strip()}" if instructions.strip() else rules

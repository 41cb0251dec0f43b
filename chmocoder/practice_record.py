"""A chat's practice record as stored in its hash (field `practice`, JSON), read by the coach, the
page and the exports alike: {"exercises": [entry, ...]}, the newest last.

An entry is the exercise (chmocoder.practice_set.Exercise's fields, hidden tests and solution
included) and how it went: "started", "level", "runs", "best" (most hidden tests passed in one run),
"rung" (how much of RUNGS was revealed), "solved", "solved_at", "solved_with" (the last rung revealed
before it was solved, or "no help"), "code" (the learner's last checked code), "last" (that check's
outcome), "model_refused" (why the model's own exercise was not used, "" if it was).
"""

from __future__ import annotations

import json
from typing import Any

RUNGS = ("hint", "pseudocode", "solution")  # what each "Hint" press reveals, in order


def help_at(rung: int) -> str:
    """The help a learner has had once `rung` rungs are revealed: the last one, or "no help"."""
    return RUNGS[rung - 1] if rung else "no help"


def record_of(meta: dict[str, Any] | None) -> dict[str, Any]:
    """{"exercises": [...]} from a chat's metadata; an empty record when there is none (or it is unreadable)."""
    raw = (meta or {}).get("practice")
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    exercises = record.get("exercises") if isinstance(record, dict) else None
    if not isinstance(exercises, list):
        return {"exercises": []}
    return {"exercises": [kept for entry in exercises if (kept := _usable(entry)) is not None]}


DEFAULTS: dict[str, Any] = {
    "title": "",
    "task": "",
    "starter": "",
    "hint": "",
    "pseudocode": "",
    "solution": "",
    "origin": "set",
    "started": 0.0,
    "runs": 0,
    "best": 0,
    "rung": 0,
    "solved": False,
    "model_refused": "",
}


def _usable(entry: Any) -> dict[str, Any] | None:
    """An entry with every field a reader needs (an older or damaged one filled in), or None when it
    cannot be an exercise (no function, no tests): a bad entry must not stop the chat from opening."""
    if not isinstance(entry, dict) or not isinstance(entry.get("function"), str) or not entry.get("tests"):
        return None
    kept = DEFAULTS | {k: v for k, v in entry.items() if v is not None}
    kept["rung"] = min(max(kept["rung"], 0), len(RUNGS)) if isinstance(kept["rung"], int) else 0
    if kept["solved"]:
        kept.setdefault("solved_with", help_at(kept["rung"]))
    kept.setdefault("code", kept["starter"])
    return kept

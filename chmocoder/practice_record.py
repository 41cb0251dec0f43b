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


def record_of(meta: dict[str, Any] | None) -> dict[str, Any]:
    """{"exercises": [...]} from a chat's metadata; an empty record when there is none (or it is unreadable)."""
    raw = (meta or {}).get("practice")
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) and isinstance(record.get("exercises"), list) else {"exercises": []}

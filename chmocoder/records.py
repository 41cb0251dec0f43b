"""What is stored in Redis, as types: a chat's metadata and its messages.

Every surface reads these (the page, REST, /v1, the exports), so their fields are named once here.
Redis hashes hold strings only, hence `ChatMeta`'s string times; messages are JSON.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class ChatMeta(TypedDict, total=False):
    """The chat's hash (chmocoder.store): every field a string."""

    created: str  # epoch seconds
    updated: str
    task: str  # chmocoder.prompts.TASKS
    level: str  # chmocoder.prompts.LEVELS
    title: str
    share: str  # the read-only share token, once the creator has shared the chat
    creator: str  # hash of the owner token that started it ("" = nobody; absent = made before creators)
    practice: str  # JSON: the chat's exercises and how they went (chmocoder.practice_record); never sent as is


class CheckRecord(TypedDict):
    label: str  # what was checked: `f(3) == 5`, `print(f(3))  → 5`, "the code runs"
    origin: str  # "answer" (its own claim), "user" (the question's example), "generated" (tests written for it)
    passed: bool
    detail: NotRequired[str]  # for a failed check: expected vs actual, or the error
    failed_on_original: NotRequired[bool]  # a bug report's example, run on the user's own code too


class VerdictRecord(TypedDict):
    """chmocoder.verify.Verdict as stored and sent."""

    status: Literal["verified", "failed", "not_checked"]
    summary: str
    passed: int
    total: int
    repairs: int
    reason: str
    failing: dict[str, str] | None  # {"check", "detail"}: the first failing check
    checks: list[CheckRecord]


class Attempt(TypedDict):
    """An earlier draft that a repair replaced (or a repair that was not used, and why)."""

    content: str
    verdict: NotRequired[VerdictRecord]
    stopped: NotRequired[bool]
    rejected: NotRequired[str]


class Attachment(TypedDict):
    """A text file attached to a question (chmocoder.attachments): kept inside the question."""

    name: str
    text: str


class StoredMessage(TypedDict):
    role: Literal["user", "assistant"]
    content: str
    at: NotRequired[float]
    task: NotRequired[str]  # answers: the task and level they were written for
    level: NotRequired[str]
    stats: NotRequired[dict[str, Any]]  # answers: tokens, timings, passes
    stopped: NotRequired[bool]  # cut short by Stop, a disconnect or a shutdown
    interrupted: NotRequired[bool]  # a placeholder answer: the server stopped before answering
    error: NotRequired[str]  # the model failed mid-answer
    verdict: NotRequired[VerdictRecord]
    attempts: NotRequired[list[Attempt]]
    feedback: NotRequired[Literal["up", "down"]]  # answers: the reader's thumbs up or down
    files: NotRequired[list[Attachment]]  # questions: the files attached to them, read after the text

"""The shape of one turn: what is decided before the model runs (`Turn`), what each update tells a
surface (`Reply`), and what the turn has produced so far (`TurnResult`).

A turn's stream runs answer → checks → repairs → save (chmocoder.chat). Several model passes can
make one turn (the answer, a pass that writes tests, repairs); `TurnResult` keeps their text, the
earlier attempts, the verdict and the summed stats in one place, so a stop at any moment saves a
coherent message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .attachments import with_files
from .engine import GenerationParams, GenerationStats
from .records import Attachment, Attempt, ChatMeta, StoredMessage
from .task_picker import AUTO
from .verify import Verdict, not_checked


@dataclass
class Reply:
    """One update of a streamed answer: the whole text so far, plus stats once it is done.

    `status` says what happens meanwhile ("checking the code…", "fixing (round 1 of 2)"); the last
    reply carries the `verdict` and the `attempts` (earlier drafts the repairs replaced)."""

    text: str
    done: bool = False
    stopped: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    verdict: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class TurnOptions:
    """Per-turn choices; None means 'the chat's own setting' or 'the server default'."""

    task: str | None = None
    level: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()
    verify: bool | None = None
    party: str | None = None  # who asks, for fair turns at the model (an API client's address); see Turn.party
    owner: str | None = None  # the asking browser's owner token: its standing instructions apply
    instructions: str | None = None  # standing instructions given with the turn (API clients), instead


@dataclass
class Turn:
    """Everything decided before the model runs: the prompt that fits the window, the generation
    parameters, what was left out, and where the answer goes (a stored chat, or nowhere)."""

    key: str  # names the KV state and the log lines
    system: str
    history: list[StoredMessage]  # the earlier messages the prompt was built from
    message: str
    task: str  # the task answered; with "auto" chosen, the one picked from the message
    level: str
    prompt: list[int]
    params: GenerationParams
    dropped: int
    verify: bool
    chat_id: str | None = None
    replace_from: int | None = None
    retitle: bool = False
    meta: ChatMeta = field(default_factory=lambda: ChatMeta())
    interrupted: bool = False  # the chat's last question was left unanswered by a crash
    question: dict[str, Any] | None = None  # the question as saved (journaled with an answer Redis may lose)
    # Who asks: waiting turns take the model's sequences round-robin across parties, so one party's
    # many requests do not hold everyone else back. The chat's owner token, else the surface's say.
    party: str = ""
    chosen: str = ""  # the task the chat or request asked for; "auto" (picked from the message) stays
    # the chat's task, while `task` is this turn's pick, which the stats name
    files: list[Attachment] = field(default_factory=list)  # attached to the question, read after its text
    dropped_files: list[str] = field(default_factory=list)  # names of files in the messages left out

    @property
    def picked(self) -> bool:
        return self.chosen == AUTO

    @property
    def asked(self) -> str:
        """The question as the model reads it (and its checks look for examples in): text, then files."""
        return with_files(self.message, self.files)


@dataclass
class TurnResult:
    """What a turn has produced so far; saved however the turn ends."""

    text: str = ""  # the answer shown now (a repair replaces the draft once it has finished)
    streaming: str = ""  # the model pass under way, if any
    first: GenerationStats | None = None
    completion_tokens: int = 0
    passes: int = 0
    verdict: Verdict | None = None
    attempts: list[Attempt] = field(default_factory=list)
    diff: str = ""
    checks_s: float = 0.0
    checking: bool = False  # verification has started
    outcome: str = "stopped"
    error: str | None = None
    _ended: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def claim_end(self) -> bool:
        """True for the first caller only: the turn's own stream or a shutdown saving it."""
        return self._ended.acquire(blocking=False)

    def add_pass(self, stats: GenerationStats) -> None:
        self.first = self.first or stats
        self.completion_tokens += stats.completion_tokens
        self.passes += 1

    def record(self, turn: Turn) -> dict[str, Any]:
        """The stats of the turn: the first pass's timings, tokens summed over every pass."""
        base = (self.first or GenerationStats()).as_dict()
        extra: dict[str, Any] = {"dropped_messages": turn.dropped}
        if turn.dropped_files:
            extra["dropped_files"] = turn.dropped_files
        if turn.picked:
            extra["picked_task"] = turn.task
        if self.passes > 1 or self.checks_s:
            extra |= {"model_passes": self.passes, "checks_s": round(self.checks_s, 3)}
        return base | {"completion_tokens": self.completion_tokens} | extra

    def settle_stopped(self) -> None:
        """A stop keeps the last complete answer; a repair cut short goes with the earlier attempts,
        and checks cut short leave the answer 'not checked'."""
        if self.streaming:
            if self.text:
                self.attempts.append({"content": self.streaming, "stopped": True})
            else:
                self.text = self.streaming
            self.streaming = ""
        if self.checking and self.verdict is None:
            self.verdict = not_checked("stopped before the checks finished")

    def entry(self, turn: Turn, stats: dict[str, Any]) -> StoredMessage:
        """The assistant message as stored."""
        entry: StoredMessage = {
            "role": "assistant",
            "content": self.text + self.diff,
            "at": time.time(),
            "task": turn.task,
            "level": turn.level,
            "stats": stats,
        }
        if self.outcome != "done":
            entry["stopped"] = True
        if self.error:
            entry["error"] = self.error
        if self.verdict is not None:
            entry["verdict"] = self.verdict.as_dict()
        if self.attempts:
            entry["attempts"] = self.attempts
        return entry

    def reply(self, stats: dict[str, Any]) -> Reply:
        return Reply(
            self.text + self.diff,
            done=True,
            stopped=self.outcome != "done",
            stats=stats,
            verdict=self.verdict.as_dict() if self.verdict else None,
            attempts=self.attempts,
        )

"""The chat service: every rule of a turn lives here, once, for every surface (UI, API, OpenAI).

The service prepares a `Turn` (validate the message → load the history → fit the prompt to the
context window), whose stream runs: save the question → the answer → checks of its code in the
sandbox → repairs while a check fails and rounds are left → save the answer with its verdict (or,
if the stream is closed early by Stop or a disconnect, what was written, marked as stopped).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import closing
from dataclasses import replace
from typing import Any

from . import metrics
from .attachments import Limits, checked_files, file_names, looks_binary, with_files
from .checks import code_blocks, has_python, solution_code
from .diffs import fix_diff
from .engine import Engine, EngineError, GenerationParams, GenerationStats
from .errors import ChatError, InvalidInput, ModelFailed, Unavailable, storage_errors
from .journal import Journal
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK, LEVELS, TASK_CHOICES, system_prompt
from .records import Attachment, Attempt, ChatMeta, StoredMessage
from .settings import Settings
from .store import TOKEN, ChatNotFound, ChatStore, StoreError
from .task_picker import AUTO, pick_task
from .titles import question_title, title_of
from .turn import Reply, Turn, TurnOptions, TurnResult
from .verify import (
    KeptChecks,
    Plan,
    Verdict,
    Verifier,
    claims_request,
    generated_checks,
    next_attempt,
    not_checked,
    plan,
    repair_request,
    same_code,
    standing,
    tests_request,
)

__all__ = ["ChatService", "Reply", "TurnOptions", "newest_question"]

log = logging.getLogger(__name__)

# Room kept for the answer when even the newest message barely fits the window.
MIN_ANSWER_TOKENS = 64
MAX_STOPS = 4
# Every surface's limits on generation settings come from here and are checked once, in generation_params.
TEMPERATURE_RANGE = (0.0, 2.0)
# A stateless (OpenAI-style) request carries its whole conversation; beyond this it is refused.
MAX_CONVERSATION_CHARS = 400_000
# How often a turn whose code is being checked looks up (so that Stop lands within this).
CHECK_POLL_S = 0.25
# The short extra pass that writes tests for an answer that claims nothing checkable.
TESTS_TOKENS = 200
# An answer the length limit cut inside its code is repaired only under at least this limit.
CUT_REPAIR_MIN_TOKENS = 256
TESTS_SYSTEM = "You are a careful Python tester. You write short, correct assert statements."


def _check_choice(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")


def refuse_broken_text(text: str, what: str) -> None:
    """A lone UTF-16 surrogate ("\\ud800" in JSON) is no character: it cannot be stored or tokenized."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} has an invalid character at position {exc.start} (a lone UTF-16 surrogate); send UTF-8 text"
        ) from None


MAX_INSTRUCTIONS_CHARS = 2000


def checked_instructions(text: Any) -> str:
    """Standing instructions as kept and read by the model, or InvalidInput saying what is wrong."""
    if not isinstance(text, str):
        raise InvalidInput("standing instructions must be text")
    text = text.strip()
    if len(text) > MAX_INSTRUCTIONS_CHARS:
        raise InvalidInput(f"standing instructions are at most {MAX_INSTRUCTIONS_CHARS:,} characters")
    if looks_binary(text):
        raise InvalidInput("standing instructions must be plain text")
    refuse_broken_text(text, "the standing instructions")
    return text


# A replica answering a chat renews a lease on it this often; after a crash the lease lapses within
# LEASE_S and the question is shown as interrupted.
LEASE_S = 30
INTERRUPTED: StoredMessage = {"role": "assistant", "content": "", "interrupted": True}


class Background:
    """`work` every `every_s` seconds on a daemon thread, started by the first `start_once`."""

    def __init__(self, work: Callable[[], None], every_s: float, name: str) -> None:
        self.work, self.every_s, self.name = work, every_s, name
        self._started = threading.Lock()

    def start_once(self) -> None:
        if self._started.acquire(blocking=False):
            threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.every_s)
            self.work()


def answered(history: list[StoredMessage]) -> list[StoredMessage]:
    """The history without questions that were never answered (the model should not answer them now)."""
    kept: list[StoredMessage] = []
    for message in history:
        if message.get("interrupted"):
            if kept and kept[-1]["role"] == "user":
                kept.pop()
            continue
        kept.append(message)
    return kept


class Halted(Exception):
    """A turn cut short by a shutdown: it ends as stopped, keeping what was written."""


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def newest_question(messages: list[dict[str, Any]]) -> Any:
    """The question a conversation ends with; a conversation must end with the user's message."""
    if not messages or messages[-1].get("role") != "user":
        raise InvalidInput("the last message must be the user's")
    return messages[-1].get("content")


def check_owner(owner: str) -> None:
    if not TOKEN.match(owner or ""):
        raise InvalidInput("missing or malformed owner token")


class ChatService:
    def __init__(
        self,
        engine: Engine,
        store: ChatStore,
        settings: Settings,
        verifier: Verifier | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        self.verifier = verifier
        self.journal = journal
        self._checks_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chmocoder-checks")
        # Turns in progress: set once their answer (whole or partial) is saved.
        self._saving: dict[str, threading.Event] = {}
        # Every turn under way, however it was asked for, so that a shutdown can stop and save it.
        self._live: dict[int, tuple[Turn, TurnResult, threading.Event | None]] = {}
        self._closed = threading.Event()  # shutting down: no new turns
        self._halt = threading.Event()  # shutting down: running turns stop at the next token
        self._renewing = Background(self._renew_leases, LEASE_S / 3, "chmocoder-leases")
        self.interval = settings.stream_interval_ms / 1000

    def wait_until_saved(self, chat_id: str, timeout: float = 10.0) -> None:
        """Block until a turn running in this chat has saved its answer (after Stop or a reload)."""
        event = self._saving.get(chat_id)
        if event is not None:
            event.wait(timeout)

    # -- chats ---------------------------------------------------------------------------------

    def new_chat(
        self,
        task: str | None = DEFAULT_TASK,
        level: str | None = DEFAULT_LEVEL,
        owner: str | None = None,
        first_question: str = "",
        first_files: list[Attachment] | None = None,
    ) -> str:
        """Create a chat; with an owner token it also goes into that browser's (or client's) list.
        A task or level of None (a client leaving it out) means the default. Made for `first_question`,
        it is titled from it at once, so the sidebar lists it by name before the answer starts."""
        task = DEFAULT_TASK if task is None else task
        level = DEFAULT_LEVEL if level is None else level
        _check_choice(task, TASK_CHOICES, "task")
        _check_choice(level, LEVELS, "level")
        if owner is not None:
            check_owner(owner)
        title = title_of(first_question, first_files) if first_question or first_files else ""
        with storage_errors():
            chat_id = self.store.create(task, level, owner, title)
        log.info("chat created chat=%s task=%s level=%s", chat_id, task, level)
        return chat_id

    def info(self, chat_id: str) -> ChatMeta:
        with storage_errors():
            return self.store.meta(chat_id)

    def chat(self, chat_id: str) -> tuple[ChatMeta, list[StoredMessage]]:
        """Metadata and transcript in one Redis round trip (two if the last question has no answer)."""
        with storage_errors():
            meta, messages = self.store.chat(chat_id)
            if self._unanswered(chat_id, messages):
                messages = [*messages, INTERRUPTED]
            return meta, messages

    def history(self, chat_id: str) -> list[StoredMessage]:
        """The transcript: dicts with role and content (and `stopped` for cut answers; a last question
        that nobody is answering, left by a crash, is followed by an `interrupted` answer)."""
        return self.chat(chat_id)[1]

    def _unanswered(self, chat_id: str, messages: list[StoredMessage]) -> bool:
        """The last question has no answer, and none is being written (here or by another replica),
        or waits in the journal: the server stopped before answering it."""
        if not messages or messages[-1]["role"] != "user" or chat_id in self._saving:
            return False
        if self.journal is not None and self.journal.holds(chat_id):
            return False
        return not self.store.answering(chat_id)

    # -- a turn --------------------------------------------------------------------------------

    @property
    def attachment_limits(self) -> Limits:
        return Limits(self.settings.max_attachments, self.settings.max_attachment_bytes)

    def attach(self, files: Any) -> list[Attachment]:
        """Files sent with a message (`[{"name", "text"}]`), checked against the limits; InvalidInput says why not."""
        return checked_files(files, self.attachment_limits)

    def validate_message(self, message: Any, files: list[Attachment] | None = None) -> str:
        """The message's text, or InvalidInput saying what is wrong; with files attached it may be empty."""
        if not isinstance(message, str):
            raise InvalidInput("the message must be text")
        if not message.strip() and not files:
            raise InvalidInput("the message is empty")
        limit = self.settings.max_message_chars
        if len(message) > limit:
            raise InvalidInput(f"the message is {len(message):,} characters long; the limit is {limit:,}")
        if looks_binary(message):
            raise InvalidInput("the message looks like binary data (it contains control characters); paste text only")
        refuse_broken_text(message, "the message")
        return message

    def generation_params(self, options: TurnOptions) -> GenerationParams:
        s = self.settings
        temperature = s.temperature if options.temperature is None else options.temperature
        top_p = s.top_p if options.top_p is None else options.top_p
        max_tokens = s.max_new_tokens if options.max_new_tokens is None else options.max_new_tokens
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise InvalidInput(f"temperature must be between {low:g} and {high:g}")
        if not 0.0 < top_p <= 1.0:
            raise InvalidInput("top_p must be greater than 0 and at most 1")
        if not 1 <= max_tokens <= s.max_new_tokens_limit:
            raise InvalidInput(f"max new tokens must be between 1 and {s.max_new_tokens_limit}")
        if len(options.stop) > MAX_STOPS or any(not 0 < len(stop) <= 100 for stop in options.stop):
            raise InvalidInput(f"give at most {MAX_STOPS} stop sequences of 1 to 100 characters")
        return GenerationParams(int(max_tokens), float(temperature), float(top_p), tuple(options.stop))

    def fit_prompt(
        self,
        system: str,
        history: list[dict[str, Any]],
        message: str,
        params: GenerationParams,
        files: list[Attachment] | None = None,
    ) -> tuple[list[int], GenerationParams, int]:
        """Prompt tokens that fit the window, `params` with the answer budget left, and how many old
        messages were dropped.

        The oldest messages (with their files) go first; the system prompt and the new message with
        its files are always kept. A message that cannot fit even alone is refused with its size (and
        each file's), never truncated silently.
        """
        n_ctx = self.engine.n_ctx
        turns = [
            {"role": m["role"], "content": with_files(m["content"], m.get("files"))}
            for m in history
            if m.get("content") or m.get("files")
        ]
        newest = {"role": "user", "content": with_files(message, files)}
        alone = self.engine.prompt_tokens([{"role": "system", "content": system}, newest])
        if len(alone) + MIN_ANSWER_TOKENS > n_ctx:
            raise InvalidInput(self._too_long(len(alone), files))
        budget = max(n_ctx - params.max_tokens, len(alone))

        def tokens(start: int) -> list[int]:
            return self.engine.prompt_tokens([{"role": "system", "content": system}, *turns[start:], newest])

        prompt, start = tokens(0), 0
        if len(prompt) > budget:
            start = self._oldest_kept(turns, len(prompt) - len(alone), len(prompt) - budget)
            prompt = tokens(start)
            while len(prompt) > budget and start < len(turns):  # the estimate fell short, by a message or so
                start += 1
                prompt = tokens(start)
            if start < len(turns) and turns[start]["role"] == "assistant":  # never an answer first
                start += 1
                prompt = tokens(start)
        return prompt, replace(params, max_tokens=min(params.max_tokens, n_ctx - len(prompt))), start

    def _too_long(self, tokens: int, files: list[Attachment] | None) -> str:
        n_ctx = self.engine.n_ctx
        what = "the message and its files are" if files else "the message is"
        text = (
            f"{what} about {tokens:,} tokens with the instructions; the model's window holds {n_ctx:,} tokens "
            "including the answer, so shorten it or split it"
        )
        if files:
            sizes = ", ".join(f"{f['name']} about {self.engine.count_tokens(f['text']):,}" for f in files)
            text += f" (files: {sizes} tokens)"
        return text

    def measure(self, message: str, files: list[Attachment] | None = None) -> dict[str, int]:
        """How much of the model's window a message and its files take: `tokens` of `window`, and
        `room`, the most a message may take and still leave room for a short answer."""
        tokens = self.engine.count_tokens(with_files(message, files)) if message or files else 0
        return {"tokens": tokens, "window": self.engine.n_ctx, "room": self.engine.n_ctx - MIN_ANSWER_TOKENS}

    def _oldest_kept(self, turns: list[dict[str, Any]], history_tokens: int, excess: int) -> int:
        """How many of the oldest messages to drop to save `excess` tokens. Each message is tokenized
        once, plus an even share of the chat template's tokens: re-tokenizing the whole conversation
        for every dropped message held the model a minute for a request of 1,000 short messages."""
        sizes = [self.engine.count_tokens(m["content"]) for m in turns]
        overhead = max(0.0, (history_tokens - sum(sizes)) / max(1, len(turns)))
        start = 0
        while excess > 0 and start < len(turns):
            excess -= sizes[start] + overhead
            start += 1
        return start

    def send(
        self,
        chat_id: str,
        message: Any,
        options: TurnOptions = TurnOptions(),
        replace_from: int | None = None,
        files: Any = None,
    ) -> Iterator[Reply]:
        """Run one turn, yielding the answer so far. Close the iterator to stop: the partial answer is kept.

        Bad input raises here, at the call; the chat is written only once the turn is iterated, so a
        caller that refuses the turn (a full server) leaves nothing behind.
        `replace_from=i` answers `message` in place of the user message at index i, dropping it and
        everything after it (Edit and Regenerate); the stored chat changes only once the new turn starts.
        `files` (`[{"name", "text"}]`) are attached to the message; replacing one, None keeps its files.
        """
        return self._run(self.prepare(chat_id, message, options, replace_from, files))

    def prepare(
        self,
        chat_id: str,
        message: Any,
        options: TurnOptions = TurnOptions(),
        replace_from: int | None = None,
        files: Any = None,
    ) -> Turn:
        """A stored chat's turn, checked and fitted to the window; nothing is written yet."""
        attached = self.attach(files)
        with storage_errors():
            if self.journal is not None:  # an answer kept while Redis was away goes before this question
                self.journal.replay(self.store, chat_id)
            meta, history = self.store.chat(chat_id)
            interrupted = replace_from is None and self._unanswered(chat_id, history)
        if replace_from is None and history and history[-1]["role"] == "user" and not interrupted:
            raise InvalidInput("this chat is still answering its last question; wait for the answer or stop it")
        # Editing the first question retitles the chat, unless the user named it.
        retitle = False
        if replace_from is not None:
            if not (0 <= replace_from < len(history) and history[replace_from]["role"] == "user"):
                raise InvalidInput("that message is no longer in the chat; reload to see the current chat")
            replaced = history[replace_from]
            retitle = replace_from == 0 and meta.get("title") == question_title(replaced)
            attached = attached if files is not None else list(replaced.get("files") or [])
            history = history[:replace_from]
        message, params = self._checked(message, options, attached)
        if interrupted:
            history = [*history, INTERRUPTED]
        chosen = options.task or meta.get("task", DEFAULT_TASK)
        asked = with_files(message, attached)
        task = pick_task(asked) if chosen == AUTO else chosen
        level = options.level or meta.get("level", DEFAULT_LEVEL)
        system = system_prompt(task, level, self._standing(options), message)
        earlier = answered(history)
        prompt, params, dropped = self.fit_prompt(system, earlier, message, params, attached)
        log.debug("turn chat=%s message=%r files=%s", chat_id, message, file_names(attached))
        return Turn(
            f"turn chat={chat_id}",
            system,
            history,
            message,
            task,
            level,
            prompt,
            params,
            dropped,
            self._verify_wanted(options),
            chat_id=chat_id,
            replace_from=replace_from,
            retitle=retitle,
            meta=meta,
            chosen=chosen,
            interrupted=interrupted,
            party=meta.get("creator") or options.party or chat_id,
            files=attached,
            dropped_files=[f["name"] for m in earlier[:dropped] for f in m.get("files") or []],
        )

    def complete(
        self, messages: list[dict[str, str]], options: TurnOptions = TurnOptions(), files: Any = None
    ) -> Iterator[Reply]:
        """A turn that stores nothing (OpenAI-style): the caller sends the whole conversation each time.
        Bad input raises here, at the call.

        System messages replace ChMOCoder's own system prompt; the newest message must be the user's;
        `files` are attached to it.
        """
        newest_question(messages)
        if sum(len(m.get("content") or "") for m in messages) > MAX_CONVERSATION_CHARS:
            raise InvalidInput(f"the conversation is longer than {MAX_CONVERSATION_CHARS:,} characters")
        for number, earlier in enumerate(messages[:-1], 1):
            refuse_broken_text(str(earlier.get("content") or ""), f"message {number}")
        attached = self.attach(files)
        message, params = self._checked(messages[-1].get("content"), options, attached)
        chosen, level = options.task or DEFAULT_TASK, options.level or DEFAULT_LEVEL
        task = pick_task(with_files(message, attached)) if chosen == AUTO else chosen
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m.get("content")) or (
            system_prompt(task, level, self._standing(options), message)
        )
        history = [m for m in messages[:-1] if m["role"] in ("user", "assistant")]
        prompt, params, dropped = self.fit_prompt(system, history, message, params, attached)
        # A client resending one conversation keeps the same system prompt and first question.
        opening = next((m["content"] for m in messages if m["role"] == "user"), "")
        key = "v1:" + hashlib.sha256(f"{system}\x00{opening}".encode()).hexdigest()[:32]
        turn = Turn(key, system, history, message, task, level, prompt, params, dropped, self._verify_wanted(options))
        turn.chosen, turn.files = chosen, attached
        turn.party = options.party or key
        return self._run(turn)

    def regenerate(self, chat_id: str, options: TurnOptions = TurnOptions()) -> Iterator[Reply]:
        """Answer the last question again (with its files), replacing the last answer."""
        index, question = self._last_question(chat_id)
        return self.send(chat_id, question["content"], options, replace_from=index)

    def edit(self, chat_id: str, index: int, text: Any, options: TurnOptions = TurnOptions()) -> Iterator[Reply]:
        """Replace the user message at `index` with `text` (its files stay) and answer it; later
        messages are dropped."""
        return self.send(chat_id, text, options, replace_from=index)

    def undo(self, chat_id: str) -> str:
        """Remove the last question and its answer; returns the question so it can be edited and resent."""
        return self.take_back(chat_id)["content"]

    def take_back(self, chat_id: str) -> StoredMessage:
        """Remove the last question and its answer; returns the question, files included."""
        index, question = self._last_question(chat_id)
        with storage_errors():
            self.store.truncate(chat_id, index)
        return question

    def _last_question(self, chat_id: str) -> tuple[int, StoredMessage]:
        history = self.history(chat_id)
        for index in range(len(history) - 1, -1, -1):
            if history[index]["role"] == "user":
                return index, history[index]
        raise InvalidInput("this chat has no question yet")

    # -- a turn's stages: answer → checks → repairs → save --------------------------------------

    def _standing(self, options: TurnOptions) -> str:
        """The standing instructions a turn follows: given with it (an API client), else those the
        asking browser keeps (its owner token)."""
        if options.instructions is not None:
            return checked_instructions(options.instructions)
        if not options.owner:
            return ""
        check_owner(options.owner)
        with storage_errors():
            return self.store.instructions(options.owner)

    def _verify_wanted(self, options: TurnOptions) -> bool:
        return self.settings.verify_enabled if options.verify is None else options.verify

    def _checked(
        self, message: Any, options: TurnOptions, files: list[Attachment] | None = None
    ) -> tuple[str, GenerationParams]:
        """The message and generation settings of a turn, or InvalidInput before anything runs."""
        message = self.validate_message(message, files)
        _check_choice(options.task, TASK_CHOICES, "task")
        _check_choice(options.level, LEVELS, "level")
        return message, self.generation_params(options)

    def _run(self, turn: Turn) -> Iterator[Reply]:
        """Stream a prepared turn. However it ends — "done", "stopped" (the iterator was closed: Stop,
        a disconnect, a shutdown) or "error" (the model failed) — it is counted, logged and saved once
        (by this stream or, if a shutdown cannot wait for it, by `shut_down`)."""
        if self._closed.is_set():
            raise Unavailable("the server is restarting; send your message again in a moment")
        saved = self._start(turn)
        result = TurnResult()
        self._live[id(result)] = (turn, result, saved)
        try:
            yield from self._pass(turn, turn.prompt, turn.params, result)
            yield from self._verify(turn, result)
            if turn.task in ("debug", "review"):
                result.diff = fix_diff(turn.asked, result.text)
            result.outcome = "done"
        except Halted:
            log.info("%s stopped: the server is shutting down", turn.key)
        except EngineError as exc:
            result.outcome, result.error = "error", str(exc)
            raise ModelFailed(str(exc)) from exc
        finally:
            del self._live[id(result)]
            stats = self._end(turn, result, saved)
        yield result.reply(stats)

    def _end(self, turn: Turn, result: TurnResult, saved: threading.Event | None) -> dict[str, Any]:
        """Settle, count and save a turn, once: its own stream and a shutdown may both try."""
        if result.claim_end():
            if result.outcome != "done":
                result.settle_stopped()
            stats = result.record(turn)
            self._finish(turn, result, stats, saved)
            return stats
        return result.record(turn)

    def _renew_leases(self) -> None:
        """Keep the "being answered" lease of every stored chat this replica is answering."""
        for turn, _, _ in list(self._live.values()):
            if turn.chat_id is not None:
                try:
                    self.store.mark_answering(turn.chat_id, LEASE_S)
                except StoreError:
                    log.debug("could not renew the lease of chat=%s", turn.chat_id)

    def shut_down(self, grace_s: float, stop_wait_s: float = 5.0) -> None:
        """A graceful stop (SIGTERM): no new turns; the running ones get `grace_s` to finish; then the
        model stops them at the next token and each saves what it has, as stopped. A turn whose
        client no longer reads it (its stream is never resumed) is saved from here."""
        self._closed.set()
        if self._live:
            log.info("shutting down: %d answer(s) under way get %.0f s to finish", len(self._live), grace_s)
        _wait_until(lambda: not self._live, grace_s)
        if self._live:
            self._halt.set()
            self.engine.halt()
            _wait_until(lambda: not self._live, stop_wait_s)
        for turn, result, saved in list(self._live.values()):
            try:
                self._end(turn, result, saved)
            except ChatError:
                log.exception("%s could not be saved at shutdown", turn.key)

    def _start(self, turn: Turn) -> threading.Event | None:
        """Save the question of a stored chat; the returned event is set once the answer is saved."""
        if turn.chat_id is None:
            return None
        chat_id, meta = turn.chat_id, turn.meta
        with storage_errors():
            chosen = turn.chosen or turn.task
            if (chosen, turn.level) != (meta.get("task"), meta.get("level")):
                self.store.update(chat_id, task=chosen, level=turn.level)
            if turn.interrupted:  # the question a crash left unanswered says so, instead of stacking
                self.store.append(chat_id, INTERRUPTED | {"at": time.time()})
            self.store.mark_answering(chat_id, LEASE_S)
            self._renewing.start_once()
            user_entry: StoredMessage = {"role": "user", "content": turn.message, "at": time.time()}
            if turn.files:
                user_entry["files"] = turn.files
            title = question_title(user_entry)
            self.store.append(chat_id, user_entry, title=title, keep=turn.replace_from)
            turn.question = dict(user_entry)
            if turn.retitle:
                self.store.update(chat_id, title=title)
        saved = self._saving[chat_id] = threading.Event()
        return saved

    def _pass(
        self,
        turn: Turn,
        prompt: list[int],
        params: GenerationParams,
        result: TurnResult,
        status: str = "",
        shown_attempts: list[Attempt] | None = None,
    ) -> Iterator[Reply]:
        """One model pass, streamed; once it finishes its text becomes the turn's answer."""
        stats = GenerationStats()
        result.streaming = ""
        attempts = result.attempts if shown_attempts is None else shown_attempts
        try:
            with closing(self._answer(prompt, params, stats, turn.key, turn.party)) as answer:
                for text in answer:
                    result.streaming = text
                    yield Reply(text, status=status, attempts=attempts)
        finally:
            result.add_pass(stats)
        result.text, result.streaming = result.streaming, ""

    def _verify(self, turn: Turn, result: TurnResult) -> Iterator[Reply]:
        """Check the answer's code; while a check fails and rounds are left, ask the model to repair it,
        keeping whichever answer did best on the checks."""
        if not code_blocks(result.text):
            return
        if not turn.verify or self.verifier is None:
            reason = "checking is turned off for this answer" if not turn.verify else "the code sandbox is off"
            result.verdict = not_checked(reason) if has_python(result.text) else not_checked("the code is not Python")
            return
        rounds = self.settings.verify_rounds
        kept_checks = KeptChecks()
        verdict = yield from self._judge(turn, result, kept_checks)
        worse: Verdict | None = None
        for round_ in range(1, rounds + 1):
            cut = self._cut_mid_code(result, verdict)
            if verdict.status != "failed" or (cut and turn.params.max_tokens < CUT_REPAIR_MIN_TOKENS):
                break
            result.verdict = verdict
            kept, before = result.text, result.attempts
            how = next_attempt(verdict, round_, cut)
            if how == "stop":
                break
            if (yield from self._attempt(turn, result, verdict, how, worse, cut, round_)):
                if how == "claims" and same_code(kept, result.text) is False:
                    worse = self._reject(result, kept, before, "it changed code that passes the user's examples")
                else:
                    repaired = yield from self._judge(turn, result, kept_checks)
                    verdict, worse = self._keep_better(result, verdict, repaired, kept, before)
            verdict.repairs = round_
        result.verdict = verdict
        metrics.VERDICTS.labels(verdict.status).inc()

    @staticmethod
    def _keep_better(
        result: TurnResult, verdict: Verdict, repaired: Verdict, kept: str, before: list[Attempt]
    ) -> tuple[Verdict, Verdict | None]:
        """A repair that did worse on the checks than the answer it repaired is not used: that answer
        comes back, the repair goes with the earlier attempts saying why, and the next round is told
        what it broke (at temperature 0 the same request would only give the same repair)."""
        if standing(repaired) >= standing(verdict):
            return repaired, None
        ChatService._reject(result, kept, before, f"it did worse on the checks ({repaired.summary})", repaired)
        return verdict, repaired

    @staticmethod
    def _reject(
        result: TurnResult, kept: str, before: list[Attempt], why: str, verdict: Verdict | None = None
    ) -> Verdict | None:
        """The attempt just made is not used: the answer it was to improve comes back, and the attempt
        goes with the earlier ones saying why."""
        attempt: Attempt = {"content": result.text, "rejected": why}
        if verdict is not None:
            attempt["verdict"] = verdict.as_dict()
        result.attempts = [*before, attempt]
        result.text = kept
        return verdict

    @staticmethod
    def _cut_mid_code(result: TurnResult, verdict: Verdict) -> bool:
        """The length limit cut the answer inside its code. Under a small limit (a /v1 client asking
        for 5 tokens) a repair would be cut the same way and the budget spent several times over, so
        the verdict stands; under a larger one the model is asked for the code alone, shortly (it
        had run on repeating examples until the limit)."""
        cut = result.first is not None and result.first.finish_reason == "length"
        return cut and verdict.failing is not None and verdict.failing["check"] == "the code parses"

    def _judge(self, turn: Turn, result: TurnResult, kept: KeptChecks) -> Iterator[Reply]:
        """The verdict on the answer as it stands. What the first round found is kept for later ones
        (`KeptChecks`), so that a repair cannot pass by dropping a function or its claims."""
        work = plan(result.text, turn.asked, turn.task, kept.functions)
        if isinstance(work, Verdict):
            return work
        kept.functions = kept.functions or work.functions
        result.checking = True
        if not work.checks and not work.syntax_error and turn.task in ("write", "debug") and work.functions:
            if not kept.tests:
                kept.tests = yield from self._write_tests(turn, work, result)
            work.checks = kept.tests
        return (yield from self._check(work, result))

    def _check(self, work: Plan, result: TurnResult) -> Iterator[Reply]:
        """Run the checks off this thread, yielding while they run so that Stop lands at once."""
        assert self.verifier is not None
        progress = [0, len(work.checks)]
        started = time.monotonic()
        future = self._checks_pool.submit(self.verifier.run, work, lambda done, total: progress.__setitem__(0, done))
        try:
            while True:
                try:
                    return future.result(timeout=CHECK_POLL_S)
                except FutureTimeout:
                    if self._halt.is_set():
                        raise Halted from None
                    status = f"checking {min(progress[0] + 1, progress[1])} of {progress[1]}…"
                    yield Reply(result.text, status=status, attempts=result.attempts)
        finally:
            result.checks_s += time.monotonic() - started

    def _write_tests(self, turn: Turn, work: Plan, result: TurnResult) -> Iterator[Reply]:
        """One short extra pass for an answer with nothing to check: the model writes a few asserts."""
        params = replace(turn.params, max_tokens=TESTS_TOKENS, temperature=0.0)
        try:
            prompt, params, _ = self.fit_prompt(TESTS_SYSTEM, [], tests_request(work.solution, turn.asked), params)
        except InvalidInput:
            return []
        stats, tests = GenerationStats(), ""
        try:
            with closing(self._answer(prompt, params, stats, None, turn.party)) as answer:
                for tests in answer:  # noqa: B007 - the last value is the whole text
                    yield Reply(result.text, status="writing tests for the code…", attempts=result.attempts)
        finally:
            result.add_pass(stats)
        return generated_checks(tests, work.functions)

    def _attempt(
        self, turn: Turn, result: TurnResult, verdict: Verdict, how: str, worse: Verdict | None, cut: bool, round_: int
    ) -> Iterator[Reply]:
        """One more attempt at an answer whose checks failed (`how`, from verify.next_attempt): a repair
        request about the code, a fresh answer to the question, or a request to correct false claims.
        Sampled warm, with the round as seed, so that a turn still repeats exactly."""
        warm = replace(
            turn.params, temperature=max(turn.params.temperature, self.settings.repair_temperature), seed=round_
        )
        if how == "fresh":
            return (yield from self._ask_again(turn, result, verdict, turn.prompt, warm, round_))
        code = solution_code(result.text)
        request = (
            claims_request(turn.asked, result.text, verdict)
            if how == "claims"
            else repair_request(turn.asked, code, verdict, worse, cut)
        )
        try:
            prompt, params, _ = self.fit_prompt(turn.system, answered(turn.history), request, warm)
        except InvalidInput:
            return False
        return (yield from self._ask_again(turn, result, verdict, prompt, params, round_))

    def _ask_again(
        self, turn: Turn, result: TurnResult, verdict: Verdict, prompt: list[int], params: GenerationParams, round_: int
    ) -> Iterator[Reply]:
        """Stream another answer; it replaces the draft once it has finished. Returns whether it did: a
        reply without Python code is no attempt, and the draft stays."""
        draft = result.text
        earlier = [*result.attempts, {"content": draft, "verdict": verdict.as_dict()}]
        status = f"{verdict.summary} · fixing (round {round_} of {self.settings.verify_rounds})"
        yield from self._pass(turn, prompt, params, result, status, shown_attempts=earlier)
        if has_python(result.text):
            result.attempts = earlier
            return True
        result.attempts = [*result.attempts, {"content": result.text, "rejected": "it gave no Python code"}]
        result.text = draft
        return False

    def _finish(self, turn: Turn, result: TurnResult, stats: dict[str, Any], saved: threading.Event | None) -> None:
        metrics.observe_turn(result.outcome, stats)
        verdict = result.verdict.status if result.verdict else "-"
        log.info(
            "%s prompt_tokens=%d tokens=%d ttft_s=%s tok_s=%s dropped=%d passes=%d verdict=%s outcome=%s",
            turn.key,
            stats["prompt_tokens"],
            stats["completion_tokens"],
            stats["ttft_s"],
            stats["tokens_per_s"],
            turn.dropped,
            result.passes,
            verdict,
            result.outcome,
        )
        if turn.chat_id is None or saved is None:
            return
        try:
            self._save_answer(turn.chat_id, result.entry(turn, stats), result.outcome, turn.question)
        finally:
            saved.set()
            if self._saving.get(turn.chat_id) is saved:
                del self._saving[turn.chat_id]
            try:
                self.store.done_answering(turn.chat_id)
            except StoreError:
                pass  # the lease lapses on its own within LEASE_S

    def side_pass(self, system: str, request: str, max_tokens: int, party: str) -> str:
        """One model pass outside every chat's history, at temperature 0 (a practice exercise): its
        whole text. The caller holds the model's queue, as a turn does."""
        params = replace(self.generation_params(TurnOptions()), max_tokens=max_tokens, temperature=0.0)
        prompt, params, _ = self.fit_prompt(system, [], request, params)
        text = ""
        with closing(self._answer(prompt, params, GenerationStats(), None, party)) as answer:
            for text in answer:  # noqa: B007 - the last value is the whole text
                pass
        return text

    def _answer(
        self, prompt: list[int], params: GenerationParams, stats: GenerationStats, key: str | None, party: str
    ) -> Iterator[str]:
        """The answer so far, after each batch of tokens. Closing it stops the model at the next token."""
        text = ""
        with closing(self.engine.stream(prompt, params, stats, key, self.interval, party)) as batches:
            for pieces in batches:
                text += "".join(pieces)
                yield text
        if self._halt.is_set():
            raise Halted

    def _save_answer(
        self, chat_id: str, entry: StoredMessage, outcome: str, question: dict[str, Any] | None = None
    ) -> None:
        """Append the answer. One that cannot be saved now goes to the journal, with its question, and is
        written when chat storage is back; so does one saved that fewer replicas than
        CHMOCODER_REDIS_WAIT_REPLICAS acknowledged in time (a failover could still lose it and its
        question). Only if the journal fails too is a finished answer that was not saved an error for
        the user (a cut one is only logged: nobody is waiting)."""
        try:
            if self.store.append_replicated(chat_id, entry):
                return
            saved = True
            log.warning("the answer reached fewer replicas than asked; it is kept in the journal too chat=%s", chat_id)
        except ChatNotFound:
            log.warning("chat=%s was deleted or expired before its answer was saved", chat_id)
            return
        except StoreError:
            saved = False
            log.warning("could not save the answer chat=%s", chat_id, exc_info=True)
        if self.journal is not None and self.journal.add(chat_id, entry, question):
            return
        if outcome == "done" and not saved:
            raise Unavailable("the answer could not be saved: chat storage (Redis) is unreachable")

"""The chat service: every rule of a turn lives here, once, for every surface (UI, API, OpenAI).

One turn = validate the message → load the history → build a prompt that fits the context
window → save the user message → stream from the engine → save the answer (or, if the stream is
closed early by Stop or a disconnect, the partial answer marked as stopped).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any

from . import metrics
from .engine import Engine, EngineError, GenerationParams, GenerationStats
from .errors import ChatError, InvalidInput, Unavailable, storage_errors
from .prompts import DEFAULT_LEVEL, DEFAULT_TASK, LEVELS, TASKS, system_prompt
from .settings import Settings
from .store import TOKEN, ChatStore, StoreError

log = logging.getLogger(__name__)

# Room kept for the answer when even the newest message barely fits the window.
MIN_ANSWER_TOKENS = 64
TITLE_CHARS = 60
MAX_STOPS = 4
# A stateless (OpenAI-style) request carries its whole conversation; beyond this it is refused.
MAX_CONVERSATION_CHARS = 400_000


@dataclass
class Reply:
    """One update of a streamed answer: the whole text so far, plus stats once it is done."""

    text: str
    done: bool = False
    stopped: bool = False
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnOptions:
    """Per-turn choices; None means 'the chat's own setting' or 'the server default'."""

    task: str | None = None
    level: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()


def _check_choice(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")


def looks_binary(text: str) -> bool:
    """NUL bytes or many control characters mean a file was pasted, not a message."""
    if "\x00" in text:
        return True
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t")
    return controls > max(8, len(text) // 100)


def check_owner(owner: str) -> None:
    if not TOKEN.match(owner or ""):
        raise InvalidInput("missing or malformed owner token")


def title_from(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class ChatService:
    def __init__(self, engine: Engine, store: ChatStore, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        # Turns in progress: set once their answer (whole or partial) is saved.
        self._saving: dict[str, threading.Event] = {}
        self.interval = settings.stream_interval_ms / 1000

    def wait_until_saved(self, chat_id: str, timeout: float = 10.0) -> None:
        """Block until a turn running in this chat has saved its answer (after Stop or a reload)."""
        event = self._saving.get(chat_id)
        if event is not None:
            event.wait(timeout)

    # -- chats ---------------------------------------------------------------------------------

    def new_chat(self, task: str = DEFAULT_TASK, level: str = DEFAULT_LEVEL, owner: str | None = None) -> str:
        """Create a chat; with an owner token it also goes into that browser's (or client's) list."""
        _check_choice(task, TASKS, "task")
        _check_choice(level, LEVELS, "level")
        if owner is not None:
            check_owner(owner)
        with storage_errors():
            chat_id = self.store.create(task, level, owner)
        log.info("chat created chat=%s task=%s level=%s", chat_id, task, level)
        return chat_id

    def info(self, chat_id: str) -> dict[str, str]:
        with storage_errors():
            return self.store.meta(chat_id)

    def chat(self, chat_id: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Metadata and transcript in one Redis round trip."""
        with storage_errors():
            return self.store.chat(chat_id)

    def history(self, chat_id: str) -> list[dict[str, Any]]:
        """The stored transcript: dicts with role and content (and `stopped` for cut answers)."""
        with storage_errors():
            return self.store.messages(chat_id)

    # -- a turn --------------------------------------------------------------------------------

    def validate_message(self, message: Any) -> str:
        if not isinstance(message, str):
            raise InvalidInput("the message must be text")
        if not message.strip():
            raise InvalidInput("the message is empty")
        limit = self.settings.max_message_chars
        if len(message) > limit:
            raise InvalidInput(f"the message is {len(message):,} characters long; the limit is {limit:,}")
        if looks_binary(message):
            raise InvalidInput("the message looks like binary data (it contains control characters); paste text only")
        return message

    def generation_params(self, options: TurnOptions) -> GenerationParams:
        s = self.settings
        temperature = s.temperature if options.temperature is None else options.temperature
        top_p = s.top_p if options.top_p is None else options.top_p
        max_tokens = s.max_new_tokens if options.max_new_tokens is None else options.max_new_tokens
        if not 0.0 <= temperature <= 2.0:
            raise InvalidInput("temperature must be between 0 and 2")
        if not 0.0 < top_p <= 1.0:
            raise InvalidInput("top_p must be greater than 0 and at most 1")
        if not 1 <= max_tokens <= s.max_new_tokens_limit:
            raise InvalidInput(f"max new tokens must be between 1 and {s.max_new_tokens_limit}")
        if len(options.stop) > MAX_STOPS or any(not 0 < len(stop) <= 100 for stop in options.stop):
            raise InvalidInput(f"give at most {MAX_STOPS} stop sequences of 1 to 100 characters")
        return GenerationParams(int(max_tokens), float(temperature), float(top_p), tuple(options.stop))

    def fit_prompt(
        self, system: str, history: list[dict[str, Any]], message: str, params: GenerationParams
    ) -> tuple[list[int], GenerationParams, int]:
        """Prompt tokens that fit the window, `params` with the answer budget left, and how many old
        messages were dropped.

        The oldest messages go first; the system prompt and the new message are always kept. A
        message that cannot fit even alone is refused with its size, never truncated silently.
        """
        n_ctx = self.engine.n_ctx
        turns = [{"role": m["role"], "content": m["content"]} for m in history if m.get("content")]
        newest = {"role": "user", "content": message}
        alone = self.engine.prompt_tokens([{"role": "system", "content": system}, newest])
        if len(alone) + MIN_ANSWER_TOKENS > n_ctx:
            raise InvalidInput(
                f"the message is about {len(alone):,} tokens with the instructions; the model's window holds "
                f"{n_ctx:,} tokens including the answer, so shorten it or split it"
            )
        budget = max(n_ctx - params.max_tokens, len(alone))
        dropped = 0
        while True:
            prompt = self.engine.prompt_tokens([{"role": "system", "content": system}, *turns, newest])
            if len(prompt) <= budget or not turns:
                break
            # Drop the oldest exchange; never leave an assistant message first.
            cut = 2 if len(turns) > 1 and turns[1]["role"] == "assistant" else 1
            turns, dropped = turns[cut:], dropped + cut
        return prompt, replace(params, max_tokens=min(params.max_tokens, n_ctx - len(prompt))), dropped

    def send(
        self, chat_id: str, message: Any, options: TurnOptions = TurnOptions(), replace_from: int | None = None
    ) -> Iterator[Reply]:
        """Run one turn, yielding the answer so far. Close the iterator to stop: the partial answer is kept.

        Bad input raises here, at the call; the chat is written only once the turn is iterated, so a
        caller that refuses the turn (a full server) leaves nothing behind.
        `replace_from=i` answers `message` in place of the user message at index i, dropping it and
        everything after it (Edit and Regenerate); the stored chat changes only once the new turn starts.
        """
        message, params = self._checked(message, options)
        with storage_errors():
            meta, history = self.store.chat(chat_id)
        # Editing the first question retitles the chat, unless the user named it.
        retitle = False
        if replace_from is not None:
            if not (0 <= replace_from < len(history) and history[replace_from]["role"] == "user"):
                raise InvalidInput("that message is no longer in the chat; reload to see the current chat")
            retitle = replace_from == 0 and meta.get("title") == title_from(history[0]["content"])
            history = history[:replace_from]
        task = options.task or meta.get("task", DEFAULT_TASK)
        level = options.level or meta.get("level", DEFAULT_LEVEL)
        prompt, params, dropped = self.fit_prompt(system_prompt(task, level), history, message, params)
        log.debug("turn chat=%s message=%r", chat_id, message)

        def turn() -> Iterator[Reply]:
            with storage_errors():
                if (task, level) != (meta.get("task"), meta.get("level")):
                    self.store.update(chat_id, task=task, level=level)
                user_entry = {"role": "user", "content": message, "at": time.time()}
                self.store.append(chat_id, user_entry, title=title_from(message), keep=replace_from)
                if retitle:
                    self.store.update(chat_id, title=title_from(message))
            saved = self._saving[chat_id] = threading.Event()

            def save(text: str, record: dict[str, Any], outcome: str, error: str | None) -> None:
                try:
                    self._save_answer(chat_id, text, record, task, level, outcome, error)
                finally:
                    saved.set()
                    if self._saving.get(chat_id) is saved:
                        del self._saving[chat_id]

            yield from self._stream(prompt, params, dropped, f"turn chat={chat_id}", chat_id, save)

        return turn()

    def complete(self, messages: list[dict[str, str]], options: TurnOptions = TurnOptions()) -> Iterator[Reply]:
        """A turn that stores nothing (OpenAI-style): the caller sends the whole conversation each time.
        Bad input raises here, at the call.

        System messages replace ChMOCoder's own system prompt; the newest message must be the user's.
        """
        if not messages or messages[-1].get("role") != "user":
            raise InvalidInput("the last message must be the user's")
        if sum(len(m.get("content") or "") for m in messages) > MAX_CONVERSATION_CHARS:
            raise InvalidInput(f"the conversation is longer than {MAX_CONVERSATION_CHARS:,} characters")
        message, params = self._checked(messages[-1].get("content"), options)
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m.get("content")) or (
            system_prompt(options.task or DEFAULT_TASK, options.level or DEFAULT_LEVEL)
        )
        history = [m for m in messages[:-1] if m["role"] in ("user", "assistant")]
        prompt, params, dropped = self.fit_prompt(system, history, message, params)
        # A client resending one conversation keeps the same system prompt and first question.
        opening = next((m["content"] for m in messages if m["role"] == "user"), "")
        key = "v1:" + hashlib.sha256(f"{system}\x00{opening}".encode()).hexdigest()[:32]

        return self._stream(prompt, params, dropped, "completion", key, lambda *_: None)

    def regenerate(self, chat_id: str, options: TurnOptions = TurnOptions()) -> Iterator[Reply]:
        """Answer the last question again, replacing the last answer."""
        index, text = self._last_question(chat_id)
        return self.send(chat_id, text, options, replace_from=index)

    def edit(self, chat_id: str, index: int, text: Any, options: TurnOptions = TurnOptions()) -> Iterator[Reply]:
        """Replace the user message at `index` with `text` and answer it; later messages are dropped."""
        return self.send(chat_id, text, options, replace_from=index)

    def undo(self, chat_id: str) -> str:
        """Remove the last question and its answer; returns the question so it can be edited and resent."""
        index, text = self._last_question(chat_id)
        with storage_errors():
            self.store.truncate(chat_id, index)
        return text

    def _last_question(self, chat_id: str) -> tuple[int, str]:
        history = self.history(chat_id)
        for index in range(len(history) - 1, -1, -1):
            if history[index]["role"] == "user":
                return index, str(history[index]["content"])
        raise InvalidInput("this chat has no question yet")

    # -- helpers -------------------------------------------------------------------------------

    def _checked(self, message: Any, options: TurnOptions) -> tuple[str, GenerationParams]:
        """The message and generation settings of a turn, or InvalidInput before anything runs."""
        message = self.validate_message(message)
        _check_choice(options.task, TASKS, "task")
        _check_choice(options.level, LEVELS, "level")
        return message, self.generation_params(options)

    def _stream(
        self,
        prompt: list[int],
        params: GenerationParams,
        dropped: int,
        what: str,
        key: str,
        finish: Callable[[str, dict[str, Any], str, str | None], None],
    ) -> Iterator[Reply]:
        """Stream one answer (`key` names its KV state). However it ends — "done", "stopped" (the
        iterator was closed: Stop, a disconnect) or "error" (the model failed) — the turn is counted
        and logged, and `finish(text, record, outcome, error)` runs exactly once."""
        stats = GenerationStats()
        text, outcome, error = "", "stopped", None
        try:
            with closing(self._answer(prompt, params, stats, key)) as answer:
                for text in answer:
                    yield Reply(text)
            outcome = "done"
        except EngineError as exc:
            outcome, error = "error", str(exc)
            raise ChatError(error) from exc
        finally:
            record = stats.as_dict() | {"dropped_messages": dropped}
            metrics.observe_turn(outcome, record)
            log.info(
                "%s prompt_tokens=%d tokens=%d ttft_s=%s tok_s=%s dropped=%d outcome=%s",
                what, stats.prompt_tokens, stats.completion_tokens, record["ttft_s"], record["tokens_per_s"],
                dropped, outcome,
            )
            finish(text, record, outcome, error)
        yield Reply(text, done=True, stats=record)

    def _answer(self, prompt: list[int], params: GenerationParams, stats: GenerationStats, key: str) -> Iterator[str]:
        """The answer so far, after each batch of tokens. Closing it stops the model at the next token."""
        text = ""
        with closing(self.engine.stream(prompt, params, stats, key, self.interval)) as batches:
            for pieces in batches:
                text += "".join(pieces)
                yield text

    def _save_answer(
        self, chat_id: str, text: str, record: dict[str, Any], task: str, level: str, outcome: str, error: str | None
    ) -> None:
        """Append the answer; a stopped or failed one is marked as stopped. A finished answer that
        cannot be saved is an error for the user; a cut one is only logged (nobody is waiting)."""
        entry: dict[str, Any] = {
            "role": "assistant", "content": text, "at": time.time(), "task": task, "level": level, "stats": record,
        }
        if outcome != "done":
            entry["stopped"] = True
        if error:
            entry["error"] = error
        try:
            self.store.append(chat_id, entry)
        except StoreError:
            log.exception("could not save the answer chat=%s", chat_id)
            if outcome == "done":
                raise Unavailable("the answer could not be saved: chat storage (Redis) is unreachable") from None

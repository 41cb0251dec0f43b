"""The model: llama-cpp-python in-process, one generation at a time, tokens streamed as produced.

The engine knows nothing about chats or Gradio: it turns messages into prompt tokens with the
model's own chat template and streams text for a prompt. A `Llama` object is not thread-safe,
so every generation holds `self._lock` from the first token to the last (or until the caller
closes the stream, which is how Stop and disconnects free the model at the next token).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from .kv_cache import KVCache, common_prefix
from .streaming import in_background

log = logging.getLogger(__name__)

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Restoring a saved state costs a few milliseconds per 1,000 tokens; reading tokens costs ~20 ms each.
MIN_RESTORE_GAIN = 8
MODEL_NICENESS = -10


def _prefer_model_thread() -> None:
    """Run the model's thread (and the OpenMP workers it starts, which inherit it) ahead of the web
    server's threads: llama.cpp's workers wait for each other, so every preemption stalls them all.
    Needs CAP_SYS_NICE (root, or a container granted it); without it nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_NICENESS)
    except OSError:
        log.debug("cannot raise the model thread's priority; it runs at normal priority")


class EngineError(RuntimeError):
    """The model failed; the message is fit to show a user."""


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()
    seed: int | None = None  # a fixed seed makes a sampled pass repeatable (repairs: one per round)


@dataclass
class GenerationStats:
    """Filled in by the engine while it streams; read by the caller when the stream ends."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cells were reused instead of evaluated
    completion_tokens: int = 0
    started: float = 0.0
    first_token_at: float | None = None
    finished_at: float | None = None
    finish_reason: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed after the first token (prefill is reported separately as time to first token)."""
        if self.first_token_at is None or self.finished_at is None or self.completion_tokens < 2:
            return None
        elapsed = self.finished_at - self.first_token_at
        return (self.completion_tokens - 1) / elapsed if elapsed > 0 else None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": None if self.ttft_s is None else round(self.ttft_s, 3),
            "tokens_per_s": None if self.tokens_per_s is None else round(self.tokens_per_s, 2),
            "finish_reason": self.finish_reason,
        }


class Engine:
    def __init__(
        self, model_path: Path, n_ctx: int, n_threads: int, n_batch: int = 512, cache: KVCache | None = None
    ) -> None:
        started = time.monotonic()
        self.model_path = model_path
        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            flash_attn=True,
            verbose=False,
        )
        template = self.llm.metadata.get("tokenizer.chat_template") or CHATML
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        self._eos_text = self._token_text(eos_id)
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._eos_text,
            bos_token=self._token_text(bos_id),
            stop_token_ids=[eos_id],
        )
        self._stop = tuple({s for s in (self._eos_text, "<|im_end|>") if s and s in template + self._eos_text})
        self._lock = threading.Lock()
        self._halted = threading.Event()
        # Every generation runs on this one thread. llama.cpp's OpenMP workers belong to the thread
        # that starts them: switching threads between generations cost a quarter of the speed here.
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="chmocoder-model", initializer=_prefer_model_thread
        )
        self.cache = cache
        # Told True when a generation takes the model and False when it lets go (on the model's thread).
        self.on_busy: Callable[[bool], None] = lambda busy: None
        log.info(
            "model loaded: %s n_ctx=%d threads=%d load_s=%.2f",
            model_path.name,
            n_ctx,
            n_threads,
            time.monotonic() - started,
        )

    @property
    def n_ctx(self) -> int:
        return int(self.llm.n_ctx())

    @property
    def name(self) -> str:
        return self.model_path.name

    def _token_text(self, token: int) -> str:
        return "" if token < 0 else self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The exact tokens the model will read: messages through the model's chat template."""
        formatted = self._formatter(messages=messages)
        return self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)

    def stream(
        self,
        prompt: list[int],
        params: GenerationParams,
        stats: GenerationStats,
        cache_key: str | None = None,
        interval: float = 0.0,
    ) -> Iterator[list[str]]:
        """generate() on the model's own thread, handed on in batches at most every `interval` seconds,
        so the model never waits for its consumer. Closing the stream stops the model at the next token."""
        return in_background(self.generate(prompt, params, stats, cache_key), interval, self._thread)

    def generate(
        self, prompt: list[int], params: GenerationParams, stats: GenerationStats, cache_key: str | None = None
    ) -> Iterator[str]:
        """Stream the answer's text pieces. Closing the iterator stops the model at the next token.

        With a `cache_key` (a conversation's name) the KV state is saved under it afterwards, and
        any turn starts from the saved state that shares the longest prefix with its prompt.
        """
        with self._lock, self._busy():
            stats.started = time.monotonic()
            stats.prompt_tokens = len(prompt)
            stats.cached_tokens = self._restore(prompt)
            stream = self.llm.create_completion(
                prompt,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=list(self._stop + params.stop),
                seed=params.seed,
                stream=True,
            )
            try:
                for chunk in stream:
                    if self._halted.is_set():
                        break
                    choice = chunk["choices"][0]
                    stats.finish_reason = choice.get("finish_reason") or stats.finish_reason
                    if choice["text"]:
                        if stats.first_token_at is None:
                            stats.first_token_at = time.monotonic()
                        yield choice["text"]
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"the model failed: {exc}") from exc
            finally:
                stream.close()
                stats.finished_at = time.monotonic()
                # Every sampled token is evaluated before the next is sampled, except the last one;
                # an end-of-text token ("stop") is sampled but is not part of the answer.
                evaluated = max(0, self.llm.n_tokens - len(prompt))
                stats.completion_tokens = evaluated + (0 if stats.finish_reason == "stop" else 1)
                if cache_key is not None:
                    self._save(cache_key)

    def halt(self) -> None:
        """For a shutdown: every generation stops at its next token, now and from now on."""
        self._halted.set()

    @contextmanager
    def _busy(self) -> Iterator[None]:
        self.on_busy(True)
        try:
            yield
        finally:
            self.on_busy(False)

    def _context_tokens(self) -> np.ndarray:
        return np.asarray(self.llm.input_ids[: self.llm.n_tokens], dtype=np.int32)

    def _restore(self, prompt: list[int]) -> int:
        """Load the cached state that best matches `prompt` if it beats what the context holds.

        Returns how many prompt tokens need no evaluation.
        """
        wanted = np.asarray(prompt, dtype=np.int32)
        have = common_prefix(self._context_tokens(), wanted)
        found = self.cache.best(wanted) if self.cache is not None else None
        if found is None or found[1] <= have + MIN_RESTORE_GAIN:
            return have
        snapshot, reusable = found
        data = self.cache.load(snapshot) if self.cache is not None else None
        if data is None:
            return have
        ctx = self.llm._ctx.ctx
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), -1, 0, -1)
        # A view of the cached bytes, not a copy: about 45 ms less per 3,000-token state.
        loaded = llama_cpp.llama_state_seq_set_data(ctx, (ctypes.c_uint8 * len(data)).from_buffer(data), len(data), 0)
        if loaded == 0:
            log.warning("could not restore a KV state; reading the prompt in full")
            self.llm.reset()
            return 0
        n = len(snapshot.tokens)
        self.llm.input_ids[:n] = snapshot.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True  # restored cells have no fresh logits: re-read one token
        return reusable

    def _save(self, key: str) -> None:
        if self.cache is None or not self.cache.enabled or self.llm.n_tokens == 0:
            return
        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        data = bytearray(size)  # llama.cpp writes straight into what the cache keeps: no copy
        written = llama_cpp.llama_state_seq_get_data(ctx, (ctypes.c_uint8 * size).from_buffer(data), size, 0)
        del data[written:]
        self.cache.put(key, self._context_tokens(), data)

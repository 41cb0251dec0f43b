"""What the chat service needs of a model, whichever serves it: the `Engine` protocol, and the
parameters and statistics of one generation.

Two engines implement it: chmocoder.local_engine (llama.cpp in this process, several chats batched
in one decode) and chmocoder.remote_engine (any OpenAI-compatible inference server, for scale-out).
An engine knows nothing about chats or Gradio: it turns messages into prompt tokens with the
model's own chat template and streams text for a prompt; closing the stream stops it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


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


class Engine(Protocol):
    """A model that streams answers; several streams may run at once."""

    on_busy: Callable[[bool], None]  # told True when the model starts working, False when it is idle

    @property
    def name(self) -> str: ...

    @property
    def n_ctx(self) -> int:
        """Tokens one conversation may hold, prompt and answer together."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The tokens the model will read for `messages`, through its chat template."""
        ...

    def stream(
        self,
        prompt: list[int],
        params: GenerationParams,
        stats: GenerationStats,
        cache_key: str | None = None,
        interval: float = 0.0,
        party: str = "",
    ) -> Iterator[list[str]]:
        """Text pieces in batches (at most one every `interval` s). `party` (who asks) gets fair turns
        among the others waiting; `cache_key` names the conversation for state kept between turns.
        Closing the iterator stops the generation at its next step; `stats` is complete after it."""
        ...

    def health(self) -> str | None:
        """None while the engine can answer, else why it cannot (for /readyz)."""
        ...

    def halt(self) -> None:
        """For a shutdown: every generation stops at its next step, now and from now on."""
        ...

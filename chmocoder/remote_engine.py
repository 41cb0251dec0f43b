"""The remote engine: answers from an OpenAI-compatible inference server instead of a model loaded here.

For a team that outgrows one machine, the model is served by an engine built for it (vLLM on a GPU,
llama.cpp's llama-server, llama-cpp-python's server) and any number of ChMOCoder replicas stay
light. Answers stream from `POST {url}/chat/completions`; Stop closes the connection, which is how
these servers learn to stop generating. The prompt is still fitted to the window here: with the
server's tokenizer when it offers one (vLLM's `/tokenize` applies the chat template, exact;
llama-cpp-python's `/extras/tokenize` and llama-server's `/tokenize` count each message's text,
plus the template's few tokens per message), else by a conservative estimate from the text.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from .engine import EngineError, GenerationParams, GenerationStats
from .settings import Settings
from .streaming import in_background

log = logging.getLogger(__name__)

TEMPLATE_TOKENS_PER_MESSAGE = 6  # "<|im_start|>role\n … <|im_end|>\n" and its kin, rounded up
CHARS_PER_TOKEN_ESTIMATE = 2.5  # without a tokenizer: code runs 3-4 characters a token; err short
CONNECT_S = 5.0
READ_S = 300.0  # a server busy with other users may take long for a first token
HEALTH_S = 3.0


class Prompt(list[int]):
    """What the chat service fits to the window: token ids (or, without the server's tokenizer, as
    many placeholders as the estimate), with the messages they stand for, which are what is sent."""

    messages: list[dict[str, str]]


class RemoteEngine:
    def __init__(self, url: str, model: str = "", api_key: str = "", n_ctx: int = 8192) -> None:
        self.url = url.rstrip("/")
        self._root = self.url.removesuffix("/v1")  # where the servers' tokenizer endpoints live
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(READ_S, connect=CONNECT_S), limits=httpx.Limits(max_connections=64)
        )
        self.on_busy: Callable[[bool], None] = lambda busy: None
        self._halted = threading.Event()
        self._active = 0
        self._active_lock = threading.Lock()
        self._model, window = self._discover(model)
        self._n_ctx = min(n_ctx, window) if window else n_ctx
        self._tokenizer = self._find_tokenizer()
        log.info(
            "remote engine: %s model=%s n_ctx=%d tokenizer=%s", self.url, self._model, self._n_ctx, self._tokenizer
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteEngine:
        return cls(
            settings.engine_url, settings.engine_model, settings.engine_api_key.get_secret_value(), settings.n_ctx
        )

    # -- start-up ------------------------------------------------------------------------------

    def _discover(self, wanted: str) -> tuple[str, int | None]:
        """The model to ask for and its window (vLLM reports max_model_len). A server that cannot be
        reached at start stops the start: better than a replica that is up and answers nothing."""
        try:
            response = self._http.get(f"{self.url}/models", timeout=HEALTH_S * 3)
            response.raise_for_status()
            models = response.json().get("data") or []
        except (httpx.HTTPError, ValueError) as exc:
            raise EngineError(f"the inference server at {self.url} does not answer /models: {exc}") from exc
        ids = [m.get("id") for m in models if m.get("id")]
        if wanted and wanted not in ids:
            raise EngineError(f"the inference server at {self.url} has no model {wanted!r}; it has {ids}")
        if not ids:
            raise EngineError(f"the inference server at {self.url} lists no model")
        chosen = wanted or ids[0]
        window = next((m.get("max_model_len") for m in models if m.get("id") == chosen), None)
        return chosen, int(window) if window else None

    def _find_tokenizer(self) -> str:
        """Which tokenizer endpoint this server has, tried once with a short text."""
        for kind, url, body in (
            ("vllm", f"{self._root}/tokenize", {"model": self._model, "messages": [{"role": "user", "content": "hi"}]}),
            ("llama-cpp-python", f"{self._root}/extras/tokenize", {"input": "hi"}),
            ("llama-server", f"{self._root}/tokenize", {"content": "hi"}),
        ):
            try:
                response = self._http.post(url, json=body, timeout=HEALTH_S)
                if response.status_code == 200 and isinstance(response.json().get("tokens"), list):
                    return kind
            except (httpx.HTTPError, ValueError):
                continue
        return "estimate"

    # -- what the chat service asks ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._model

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def health(self) -> str | None:
        """None when the server answers, else why not (for /readyz)."""
        try:
            self._http.get(f"{self.url}/models", timeout=HEALTH_S).raise_for_status()
        except httpx.HTTPError as exc:
            return f"the inference server at {self.url} does not answer: {exc}"
        return None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer == "estimate":
            return int(len(text) / CHARS_PER_TOKEN_ESTIMATE) + 1
        if self._tokenizer == "vllm":
            return len(self._tokenize({"model": self._model, "prompt": text, "add_special_tokens": False}))
        body = {"input": text} if self._tokenizer == "llama-cpp-python" else {"content": text}
        return len(self._tokenize(body))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        if self._tokenizer == "vllm":
            tokens = self._tokenize({"model": self._model, "messages": messages, "add_generation_prompt": True})
        else:
            count = sum(self.count_tokens(m["content"]) + TEMPLATE_TOKENS_PER_MESSAGE for m in messages)
            tokens = [0] * (count + TEMPLATE_TOKENS_PER_MESSAGE)
        prompt = Prompt(tokens)
        prompt.messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        return prompt

    def _tokenize(self, body: dict[str, Any]) -> list[int]:
        path = "/extras/tokenize" if self._tokenizer == "llama-cpp-python" else "/tokenize"
        try:
            response = self._http.post(f"{self._root}{path}", json=body, timeout=HEALTH_S * 10)
            response.raise_for_status()
            return list(response.json()["tokens"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise EngineError(f"the inference server's tokenizer failed: {exc}") from exc

    def stream(
        self,
        prompt: list[int],
        params: GenerationParams,
        stats: GenerationStats,
        cache_key: str | None = None,
        interval: float = 0.0,
        party: str = "",
    ) -> Iterator[list[str]]:
        """The server's answer in batches. The server keeps its own prefix cache: `cache_key` is not used."""
        messages = getattr(prompt, "messages", None)
        if messages is None:
            raise EngineError("this prompt was not made by the remote engine")
        body: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        stats.prompt_tokens = len(prompt)
        return in_background(self._generate(body, stats), interval)

    def halt(self) -> None:
        self._halted.set()

    def _generate(self, body: dict[str, Any], stats: GenerationStats) -> Iterator[str]:
        stats.started = time.monotonic()
        self._busy(+1)
        try:
            with self._http.stream("POST", f"{self.url}/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise EngineError(
                        f"the inference server refused the request ({response.status_code}): {_detail(response)}"
                    )
                for text in self._events(response, stats):
                    if self._halted.is_set():
                        break
                    yield text
        except httpx.HTTPError as exc:
            raise EngineError(f"the inference server failed: {exc}") from exc
        finally:
            stats.finished_at = time.monotonic()
            self._busy(-1)

    @staticmethod
    def _events(response: httpx.Response, stats: GenerationStats) -> Iterator[str]:
        """The text of each server-sent chunk; usage and finish reason go into `stats`."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            usage = chunk.get("usage")
            if usage:
                stats.prompt_tokens = usage.get("prompt_tokens", stats.prompt_tokens)
                stats.completion_tokens = usage.get("completion_tokens", stats.completion_tokens)
            for choice in chunk.get("choices") or []:
                stats.finish_reason = choice.get("finish_reason") or stats.finish_reason
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if stats.first_token_at is None:
                        stats.first_token_at = time.monotonic()
                    if not usage:
                        stats.completion_tokens += 1  # one chunk a token, until the server's own count
                    yield text

    def _busy(self, change: int) -> None:
        with self._active_lock:
            before = self._active
            self._active += change
            now = self._active
        if (before == 0) != (now == 0):
            self.on_busy(now > 0)


def _detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        return str(error.get("message") if isinstance(error, dict) else error or response.text)[:300]
    except ValueError:
        return response.text[:300]

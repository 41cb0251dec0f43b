"""The local engine: several chats answered at once by one model, in one `llama_decode` per step.

One thread (the model's) runs every step: it lets waiting requests take free sequences (fairly,
chmocoder.fair_queue), builds one batch of each answering sequence's next token plus a chunk of a
prompt still being read, evaluates it, and samples each sequence's next token with its own sampler
chain. A new request joins at the next step; a long prompt is read in chunks sized so that a step
beside other requests takes about PREFILL_STEP_S, so it never freezes running answers, and the
shortest prompt is read first, so a short question never waits behind a long file. Closing a stream
(Stop, a disconnect) frees its sequence at the next step.

A sequence starts from the longest prefix of its prompt already held somewhere: its own cells (a
follow-up in the same chat), another running sequence's (the shared system prompt, copied with
`llama_memory_seq_cp`, not re-read) or a saved per-chat KV state (chmocoder.kv_cache), whichever
saves most. After each answer its state is saved under the chat's key and its cells are freed
(without a cache an idle sequence keeps its cells for the chat's follow-up).

Repeatability: with one sequence, the same prompt and seed give the same answer. With several, the
sequences share one KV buffer and attention sums run over cells wherever they lie in it, so a prompt
read into other cells (beside other chats, or reusing another sequence's) rounds differently: answers
at temperature 0 may part after a few dozen tokens, and seeded warm draws sooner. llama.cpp promises
no more than that across batch shapes.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from .engine import EngineError, GenerationParams, GenerationStats
from .fair_queue import FairQueue
from .kv_cache import KVCache, common_prefix
from .llama_model import LlamaModel, Piece, Sampler
from .streaming import DONE, Failed, drain
from .token_text import TokenText

log = logging.getLogger(__name__)

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Restoring a saved state costs a few milliseconds per 1,000 tokens; reading tokens costs ~20 ms each.
MIN_RESTORE_GAIN = 8
MODEL_NICENESS = -10
# A step that reads part of a prompt while other answers stream takes about this long.
PREFILL_STEP_S = 1.0
MIN_PREFILL_CHUNK = 16
# llama.cpp's CPU kernels for a batch of fewer than 8 tokens round differently from those for more
# (logits differ by up to 0.45 for the default model): a prompt's last tokens are always read as a
# batch of at least this many, so an answer at temperature 0 does not change with what was reused.
MIN_TAIL = 8
# How long closing a stream waits for the model's thread to let go of its sequence.
RELEASE_WAIT_S = 120.0


def _prefer_model_thread() -> None:
    """Run the model's thread (and the OpenMP workers it starts, which inherit it) ahead of the web
    server's threads: llama.cpp's workers wait for each other, so every preemption stalls them all.
    Needs CAP_SYS_NICE (root, or a container granted it); without it nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_NICENESS)
    except OSError:
        log.debug("cannot raise the model thread's priority; it runs at normal priority")


@dataclass(eq=False)
class Request:
    prompt: list[int]
    params: GenerationParams
    stats: GenerationStats
    cache_key: str | None
    party: str
    out: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class Sequence:
    """One of the context's sequences, and the request it answers (None while idle)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)  # what its KV cells hold, from position 0
    request: Request | None = None
    todo: list[int] = field(default_factory=list)  # prompt tokens still to read
    next_token: int | None = None  # sampled, evaluated at the next step
    sampler: Sampler | None = None
    text: TokenText = field(default_factory=lambda: TokenText(()))
    generated: int = 0
    order: int = 0  # admission order: among prompts of one length, first come first read
    last_used: float = 0.0


def shared_prefix(a: list[int], b: list[int]) -> int:
    return common_prefix(np.asarray(a, dtype=np.int32), np.asarray(b, dtype=np.int32))


class LocalEngine:
    """llama.cpp in this process: `parallel` sequences decoded together, `n_ctx` tokens each."""

    def __init__(
        self,
        model_path: Path,
        n_ctx: int,
        n_threads: int,
        n_batch: int = 512,
        cache: KVCache | None = None,
        parallel: int = 4,
        per_party: int | None = None,
    ) -> None:
        started = time.monotonic()
        self.model_path = model_path
        self.model = LlamaModel(model_path, n_ctx, parallel, n_threads, n_batch)
        self._n_ctx = n_ctx
        self.parallel = parallel
        self.cache = cache
        template = self.model.meta("tokenizer.chat_template") or CHATML
        eos_text = self.model.piece(self.model.eos, special=True).decode("utf-8", "replace")
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=eos_text,
            bos_token=self.model.piece(self.model.bos, special=True).decode("utf-8", "replace"),
            stop_token_ids=[self.model.eos],
        )
        self._stops = tuple({s for s in (eos_text, "<|im_end|>") if s and s in template + eos_text})
        # Told True when the model starts working and False when it has nothing left (on its thread).
        self.on_busy: Callable[[bool], None] = lambda busy: None
        self._sequences = [Sequence(i) for i in range(parallel)]
        self._waiting: FairQueue[Request] = FairQueue(per_party or parallel)
        self._cond = threading.Condition()
        self._halted = threading.Event()
        self._closing = False
        self._order = itertools.count()
        self._s_per_token = 0.02  # seconds per batch token, measured as prompts are read
        self._thread = threading.Thread(target=self._run, name="chmocoder-model", daemon=True)
        self._thread.start()
        log.info(
            "model loaded: %s n_ctx=%d parallel=%d threads=%d load_s=%.2f",
            model_path.name,
            n_ctx,
            parallel,
            n_threads,
            time.monotonic() - started,
        )

    # -- what the chat service asks --------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def name(self) -> str:
        return self.model_path.name

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text, add_special=False, parse_special=False))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The exact tokens the model will read: messages through the model's chat template."""
        formatted = self._formatter(messages=messages)
        return self.model.tokenize(formatted.prompt, add_special=not formatted.added_special, parse_special=True)

    def stream(
        self,
        prompt: list[int],
        params: GenerationParams,
        stats: GenerationStats,
        cache_key: str | None = None,
        interval: float = 0.0,
        party: str = "",
    ) -> Iterator[list[str]]:
        """The answer's text pieces, handed on in batches at most every `interval` seconds. The
        request waits its turn among `party`'s peers once iterated; closing the stream frees its
        sequence at the next step. With a `cache_key`, the KV state is saved under it afterwards."""
        request = Request(list(prompt), params, stats, cache_key, party or cache_key or "")
        with self._cond:
            self._waiting.push(request.party, request)
            self._cond.notify()
        yield from drain(request.out, interval, lambda: self._release(request))

    def halt(self) -> None:
        """For a shutdown: every generation stops at its next step, now and from now on."""
        self._halted.set()
        with self._cond:
            self._cond.notify()

    def text(self, tokens: list[int]) -> str:
        """Tokens back to text, special tokens included (what the model reads, for logs and tests)."""
        return b"".join(self.model.piece(t, special=True) for t in tokens).decode("utf-8", "replace")

    def close(self) -> None:
        """Stop every generation, end the model's thread and free the model's memory."""
        self._closing = True
        self.halt()
        self._thread.join()
        self.model.close()

    def health(self) -> str | None:
        return None if self._thread.is_alive() else "the model's thread has stopped"

    def busy_sequences(self) -> int:
        return sum(1 for s in self._sequences if s.request is not None)

    def _release(self, request: Request) -> None:
        request.cancelled.set()
        with self._cond:
            self._cond.notify()
        if not request.finished.wait(RELEASE_WAIT_S):
            log.error("the model's thread did not release a sequence within %.0f s", RELEASE_WAIT_S)

    # -- the model's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        _prefer_model_thread()
        busy = False
        while True:
            while self._admit_one():
                pass
            running = [s for s in self._sequences if s.request is not None]
            if running:
                if not busy:
                    busy = True
                    self.on_busy(True)
                try:
                    self._step(running)
                except Exception as exc:  # noqa: BLE001 - a fault of ours must not stop the model's thread
                    log.exception("a model step failed; its turns fail")
                    for seq in (s for s in running if s.request is not None):
                        self._fail(seq, EngineError(f"the model failed: {exc}"))
                continue
            if busy:
                busy = False
                self.on_busy(False)
            if self._closing:
                return
            with self._cond:
                if not len(self._waiting):
                    self._cond.wait(timeout=1.0)

    def _drop_cancelled(self) -> None:
        """Requests closed while still waiting end without a sequence (the caller holds the lock)."""
        for request in self._waiting.remove(lambda r: r.cancelled.is_set()):
            self._end_unstarted(request)

    @staticmethod
    def _end_unstarted(request: Request) -> None:
        request.out.put(DONE)
        request.finished.set()

    def _admit_one(self) -> bool:
        """Give the next waiting request a free sequence; False if none can start now."""
        free = [s for s in self._sequences if s.request is None]
        with self._cond:
            self._drop_cancelled()
            got = self._waiting.pop() if free else None
        if got is None:
            return False
        party, request = got
        if self._halted.is_set():
            with self._cond:
                self._waiting.done(party)
            self._end_unstarted(request)
            return True
        self._start(self._pick(free, request.prompt), request)
        return True

    @staticmethod
    def _pick(free: list[Sequence], prompt: list[int]) -> Sequence:
        """The free sequence whose whole content the prompt continues (the chat's own follow-up), else
        the one used longest ago: another chat's cells stay for its own follow-up, and a shared
        system prompt is copied from wherever it is (see _reuse_prefix)."""
        own = [s for s in free if s.tokens and shared_prefix(s.tokens, prompt) == len(s.tokens)]
        return max(own, key=lambda s: len(s.tokens)) if own else min(free, key=lambda s: s.last_used)

    def _start(self, seq: Sequence, request: Request) -> None:
        prompt = request.prompt
        stats = request.stats
        stats.started = time.monotonic()
        stats.prompt_tokens = len(prompt)
        reuse = self._reuse_prefix(seq, prompt)
        stats.cached_tokens = reuse
        seq.request, seq.todo, seq.next_token = request, prompt[reuse:], None
        seq.sampler = Sampler(request.params.temperature, request.params.top_p, request.params.seed)
        seq.text = TokenText(self._stops + request.params.stop)
        seq.generated, seq.order = 0, next(self._order)

    def _reuse_prefix(self, seq: Sequence, prompt: list[int]) -> int:
        """Fill `seq` with the longest prefix of `prompt` found anywhere; returns its length. The last
        MIN_TAIL prompt tokens are always read: their last gives the answer's first token, and read
        together they take the same kernels however much was reused (see MIN_TAIL)."""
        limit = max(0, len(prompt) - MIN_TAIL)
        own = min(shared_prefix(seq.tokens, prompt), limit)
        donor, shared = max(
            ((s, min(shared_prefix(s.tokens, prompt), limit)) for s in self._sequences if s is not seq),
            key=lambda pair: pair[1],
            default=(None, 0),
        )
        found = self.cache.best(np.asarray(prompt, dtype=np.int32)) if self.cache is not None else None
        if found is not None and min(found[1], limit) > max(own, shared) + MIN_RESTORE_GAIN:
            data = self.cache.load(found[0]) if self.cache is not None else None
            if data is not None:
                if self.model.restore(seq.seq_id, data):
                    seq.tokens = [int(t) for t in found[0].tokens]
                    own = min(found[1], limit)
                else:
                    log.warning("could not restore a KV state; reading the prompt in full")
                    seq.tokens, own = [], 0
        elif donor is not None and shared > own:
            self.model.copy_prefix(donor.seq_id, seq.seq_id, shared)
            seq.tokens, own = prompt[:shared], shared
        if not self.model.forget(seq.seq_id, own):
            self.model.forget(seq.seq_id)
            own = 0
        del seq.tokens[own:]
        return own

    def _step(self, running: list[Sequence]) -> None:
        for seq in running:
            request = seq.request
            if request is not None and (request.cancelled.is_set() or self._halted.is_set()):
                self._finish(seq, flush=False)
        running = [s for s in running if s.request is not None]
        pieces, reading = self._batch(running)
        if not pieces:
            return
        began = time.monotonic()
        self._evaluate(pieces)
        if reading >= MIN_PREFILL_CHUNK:
            spent = (time.monotonic() - began) / sum(len(p.tokens) for p in pieces)
            self._s_per_token = 0.7 * self._s_per_token + 0.3 * spent

    def _batch(self, running: list[Sequence]) -> tuple[list[Piece], int]:
        """This step's batch: every answering sequence's next token, then prompt chunks within the
        room left; and how many prompt tokens it reads."""
        pieces = [Piece(s.seq_id, len(s.tokens), [s.next_token], True) for s in running if s.next_token is not None]
        room = self.model.n_batch - len(pieces)
        if len(running) > 1:  # others are answering or waiting for their first token: keep steps short
            room = min(room, max(MIN_PREFILL_CHUNK, int(PREFILL_STEP_S / self._s_per_token)))
        reading = 0
        # The shortest prompt first: a question of 20 tokens does not wait for a pasted file of 3,000.
        for seq in sorted((s for s in running if s.todo), key=lambda s: (len(s.todo), s.order)):
            if room <= 0:
                break
            chunk = seq.todo[:room]
            left = len(seq.todo) - len(chunk)
            if 0 < left < MIN_TAIL:  # never leave a tail too short for the batch kernels (MIN_TAIL)
                chunk = seq.todo[: len(seq.todo) - MIN_TAIL]
                if not chunk:
                    continue
            room -= len(chunk)
            reading += len(chunk)
            pieces.append(Piece(seq.seq_id, len(seq.tokens), chunk, len(chunk) == len(seq.todo)))
        return pieces, reading

    def _evaluate(self, pieces: list[Piece]) -> None:
        """Decode `pieces` and move each sequence on (sampling right away: the next decode replaces the
        logits). Without room in the KV buffer, idle sequences' cells go first; a batch that fails is
        retried one sequence at a time, so a failure ends only the turn it belongs to."""
        status, rows = self.model.decode(pieces)
        if status == 1 and self._free_idle_cells():
            status, rows = self.model.decode(pieces)
        if status == 0:
            found = iter(rows)
            for piece in pieces:
                self._advance(piece, next(found) if piece.logits else None)
            return
        if len(pieces) > 1:
            for piece in pieces:
                self._evaluate([piece])
            return
        seq = self._sequences[pieces[0].seq_id]
        log.error("llama_decode returned %d for seq=%d; its turn fails", status, seq.seq_id)
        self._fail(seq, EngineError(f"the model failed (llama_decode returned {status})"))

    def _advance(self, piece: Piece, row: int | None) -> None:
        seq = self._sequences[piece.seq_id]
        seq.tokens.extend(piece.tokens)
        if seq.next_token is not None:
            seq.next_token = None
        else:
            del seq.todo[: len(piece.tokens)]
        if row is not None:
            self._sample(seq, row)

    def _free_idle_cells(self) -> bool:
        idle = [s for s in self._sequences if s.request is None and s.tokens]
        for seq in idle:
            self.model.forget(seq.seq_id)
            seq.tokens = []
        return bool(idle)

    def _sample(self, seq: Sequence, row: int) -> None:
        request, sampler = seq.request, seq.sampler
        assert request is not None and sampler is not None
        token = sampler.sample(self.model, row)
        stats = request.stats
        if self.model.is_end(token):
            stats.finish_reason = "stop"
            self._finish(seq)
            return
        seq.generated += 1
        text = seq.text.add(self.model.piece(token))
        if text:
            if stats.first_token_at is None:
                stats.first_token_at = time.monotonic()
            request.out.put(text)
        if seq.text.stopped:
            stats.finish_reason = "stop"
            self._finish(seq)
        elif seq.generated >= request.params.max_tokens or len(seq.tokens) + 1 >= self._n_ctx:
            stats.finish_reason = "length"
            self._finish(seq)
        else:
            seq.next_token = token

    def _finish(self, seq: Sequence, flush: bool = True) -> None:
        """The request is done (complete, cut or stopped): keep its state, free the sequence."""
        request = seq.request
        assert request is not None
        rest = seq.text.flush() if flush else ""
        if rest:
            request.out.put(rest)
        request.stats.completion_tokens = seq.generated
        request.stats.finished_at = time.monotonic()
        if request.cache_key is not None and self.cache is not None and self.cache.enabled and seq.tokens:
            self.cache.put(request.cache_key, np.asarray(seq.tokens, dtype=np.int32), self.model.save(seq.seq_id))
            # Saved: the cells go. Every step attends over the KV buffer up to its highest cell in use,
            # so cells idle sequences kept would slow every answer running beside them.
            self.model.forget(seq.seq_id)
            seq.tokens = []
        self._free(seq)
        request.out.put(DONE)
        request.finished.set()

    def _fail(self, seq: Sequence, error: EngineError) -> None:
        request = seq.request
        assert request is not None
        request.stats.finished_at = time.monotonic()
        self.model.forget(seq.seq_id)
        seq.tokens = []
        self._free(seq)
        request.out.put(Failed(error))
        request.finished.set()

    def _free(self, seq: Sequence) -> None:
        request = seq.request
        assert request is not None
        if seq.sampler is not None:
            seq.sampler.close()
        seq.request, seq.sampler, seq.next_token, seq.todo = None, None, None, []
        seq.last_used = time.monotonic()
        with self._cond:
            self._waiting.done(request.party)

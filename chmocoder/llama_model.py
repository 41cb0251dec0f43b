"""A GGUF model and one llama.cpp context holding several sequences, through llama-cpp-python's
public low-level API (the C functions), not the `Llama` class: `Llama` can hold only one sequence
for generation, and reaching into its private attributes breaks with any upgrade.

This module knows tokens, positions and sequence ids; which chat a sequence serves, and when, is
the engine's business (chmocoder.local_engine).
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as C

log = logging.getLogger(__name__)
# llama-cpp-python hands llama.cpp's own log lines to this logger: loading prints hundreds of lines
# of INFO to stderr. Only its errors are worth a line in our log.
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)

MAX_PIECE_BYTES = 256


class ModelLoadError(RuntimeError):
    """The file could not be loaded as a model, or no context fits: the message says which."""


@dataclass(frozen=True)
class Piece:
    """One part of a batch: `tokens` of sequence `seq_id` from position `pos`, with logits for the last."""

    seq_id: int
    pos: int
    tokens: list[int]
    logits: bool


class LlamaModel:
    """The model's weights, its vocabulary and a context of `n_seq` sequences sharing one KV buffer.

    The buffer holds `n_seq * n_ctx_per_seq` cells (a unified cache: a sequence may use any free
    cell, and cells copied with `copy_prefix` are shared, not duplicated). Not thread-safe: one
    thread (the engine's) makes every call.
    """

    def __init__(self, path: Path, n_ctx_per_seq: int, n_seq: int, n_threads: int, n_batch: int) -> None:
        C.llama_backend_init()
        self.model = C.llama_model_load_from_file(str(path).encode(), C.llama_model_default_params())
        if not self.model:
            raise ModelLoadError(f"{path.name} could not be loaded as a GGUF model")
        self.vocab = C.llama_model_get_vocab(self.model)
        params = C.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * n_seq
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.kv_unified = True
        params.no_perf = True
        self.ctx = C.llama_init_from_model(self.model, params)
        if not self.ctx:
            C.llama_model_free(self.model)
            raise ModelLoadError(f"no context of {params.n_ctx} tokens for {n_seq} sequences fits in memory")
        self.memory = C.llama_get_memory(self.ctx)
        self.n_seq = n_seq
        self.n_batch = n_batch
        self.n_ctx_per_seq = n_ctx_per_seq
        self._batch = C.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        if self.ctx:
            C.llama_batch_free(self._batch)
            C.llama_free(self.ctx)
            C.llama_model_free(self.model)
            self.ctx = self.model = None

    # -- text and tokens -------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        size = 1 << 16
        buf = ctypes.create_string_buffer(size)
        n = C.llama_model_meta_val_str(self.model, key.encode(), buf, size)
        if n < 0:
            return None
        if n >= size:  # a chat template longer than 64 KiB
            buf = ctypes.create_string_buffer(n + 1)
            C.llama_model_meta_val_str(self.model, key.encode(), buf, n + 1)
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 8
        tokens = (C.llama_token * n_max)()
        n = C.llama_tokenize(self.vocab, data, len(data), tokens, n_max, add_special, parse_special)
        if n < 0:
            n_max = -n
            tokens = (C.llama_token * n_max)()
            n = C.llama_tokenize(self.vocab, data, len(data), tokens, n_max, add_special, parse_special)
        return list(tokens[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (a multi-byte character may be split across tokens)."""
        buf = ctypes.create_string_buffer(MAX_PIECE_BYTES)
        n = C.llama_token_to_piece(self.vocab, token, buf, MAX_PIECE_BYTES, 0, special)
        return buf.raw[: max(n, 0)]

    def is_end(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self.vocab, token))

    @property
    def eos(self) -> int:
        return int(C.llama_vocab_eos(self.vocab))

    @property
    def bos(self) -> int:
        return int(C.llama_vocab_bos(self.vocab))

    # -- evaluation -------------------------------------------------------------------------------

    def decode(self, pieces: list[Piece]) -> tuple[int, list[int]]:
        """Evaluate every piece in one llama_decode. Returns llama.cpp's status (0 = done, 1 = no room
        in the KV buffer, other = failure) and, per piece with logits, its row in the output."""
        batch = self._batch
        n = 0
        rows: list[int] = []
        for piece in pieces:
            for offset, token in enumerate(piece.tokens):
                batch.token[n] = token
                batch.pos[n] = piece.pos + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = piece.seq_id
                batch.logits[n] = piece.logits and offset == len(piece.tokens) - 1
                n += 1
            if piece.logits:
                rows.append(n - 1)
        batch.n_tokens = n
        return int(C.llama_decode(self.ctx, batch)), rows

    # -- sequences --------------------------------------------------------------------------------

    def forget(self, seq_id: int, start: int = 0) -> bool:
        """Drop the sequence's cells from position `start` on; False if a partial removal is refused."""
        return bool(C.llama_memory_seq_rm(self.memory, seq_id, start, -1))

    def copy_prefix(self, source: int, target: int, length: int) -> None:
        """`target` (emptied first) shares `source`'s first `length` cells: no evaluation, no copy."""
        C.llama_memory_seq_rm(self.memory, target, 0, -1)
        C.llama_memory_seq_cp(self.memory, source, target, 0, length)

    def save(self, seq_id: int) -> bytearray:
        size = C.llama_state_seq_get_size(self.ctx, seq_id)
        data = bytearray(size)  # llama.cpp writes straight into what the cache keeps: no copy
        written = C.llama_state_seq_get_data(self.ctx, (ctypes.c_uint8 * size).from_buffer(data), size, seq_id)
        del data[written:]
        return data

    def restore(self, seq_id: int, data: bytearray) -> bool:
        """Load a saved state into `seq_id` (emptied first). A view of the bytes, not a copy: about
        45 ms less per 3,000-token state."""
        C.llama_memory_seq_rm(self.memory, seq_id, 0, -1)
        view = (ctypes.c_uint8 * len(data)).from_buffer(data)
        return C.llama_state_seq_set_data(self.ctx, view, len(data), seq_id) != 0


class Sampler:
    """One sequence's sampler chain: greedy at temperature 0, else llama-cpp-python's own default
    chain (top-k 40, top-p, min-p 0.05, temperature, a seeded draw), so answers read as before."""

    def __init__(self, temperature: float, top_p: float, seed: int | None) -> None:
        self.chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        if temperature <= 0:
            C.llama_sampler_chain_add(self.chain, C.llama_sampler_init_greedy())
            return
        for link in (
            C.llama_sampler_init_top_k(40),
            C.llama_sampler_init_top_p(top_p, 1),
            C.llama_sampler_init_min_p(0.05, 1),
            C.llama_sampler_init_temp(temperature),
            C.llama_sampler_init_dist(C.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF),
        ):
            C.llama_sampler_chain_add(self.chain, link)

    def sample(self, model: LlamaModel, row: int) -> int:
        """The next token from output row `row` of the last decode (accepted into the chain)."""
        return int(C.llama_sampler_sample(self.chain, model.ctx, row))

    def close(self) -> None:
        if self.chain:
            C.llama_sampler_free(self.chain)
            self.chain = None

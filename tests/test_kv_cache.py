"""Per-chat KV states: same answers, follow-ups that skip their history, memory within budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from chmocoder.chat import ChatService
from chmocoder.kv_cache import KVCache, common_prefix
from chmocoder.local_engine import LocalEngine
from chmocoder.settings import Settings
from chmocoder.store import ChatStore
from chmocoder.streaming import in_background

CONTEXT = " ".join(f"Line {i}: process_item handles record {i} and returns its checksum." for i in range(40))


@pytest.fixture()
def make_service(settings: Settings, store: ChatStore) -> Iterator[Callable[..., ChatService]]:
    """Services on engines of their own (closed after the test), with the cache and sequences asked for."""
    engines: list[LocalEngine] = []

    def make(engine_path: Path, cache: KVCache, parallel: int = 1) -> ChatService:
        engine = LocalEngine(engine_path, settings.n_ctx, settings.threads, cache=cache, parallel=parallel)
        engines.append(engine)
        return ChatService(engine, store, settings)

    yield make
    for engine in engines:
        engine.close()


def turn(service: ChatService, chat: str, text: str) -> tuple[str, dict]:
    final = list(service.send(chat, text))[-1]
    return final.text, final.stats


@pytest.mark.parametrize("kept", ["in memory", "spilled to disk"])
def test_a_restored_chat_answers_exactly_as_an_uninterrupted_one(engine, make_service, kept, tmp_path) -> None:
    """Chat A, then chat B, then A's follow-up from the saved state: the same answer, at temperature 0,
    as A's follow-up asked straight after its first turn, and almost none of its history is re-read.
    A state spilled to disk (here: every state, as memory holds none) works the same."""
    cache = KVCache(2**30) if kept == "in memory" else KVCache(1, disk_dir=tmp_path, disk_budget=2**30)
    cached = make_service(engine.model_path, cache)
    a, b = cached.new_chat(), cached.new_chat()
    turn(cached, a, f"Here is my code:\n{CONTEXT}\nSummarise it.")
    turn(cached, b, f"Different chat:\n{CONTEXT[::-1]}\nWhat is this?")
    follow_up, stats = turn(cached, a, "Now write a unit test for process_item.")
    assert stats["cached_tokens"] >= 0.9 * stats["prompt_tokens"], stats
    assert (cache.ram_bytes == 0) == (kept == "spilled to disk")

    plain = make_service(engine.model_path, KVCache(0))
    c = plain.new_chat()
    turn(plain, c, f"Here is my code:\n{CONTEXT}\nSummarise it.")
    expected, _ = turn(plain, c, "Now write a unit test for process_item.")
    assert follow_up == expected


@pytest.mark.parametrize("parallel", [1, 2])
def test_without_the_cache_a_chat_keeps_its_history_in_its_own_sequence(engine, make_service, parallel) -> None:
    """One sequence: interleaving another chat makes a follow-up re-read its history. Two: the other
    chat takes the other sequence and the follow-up reads only its new tokens, with no saved state."""
    plain = make_service(engine.model_path, KVCache(0), parallel)
    a, b = plain.new_chat(), plain.new_chat()
    turn(plain, a, f"Here is my code:\n{CONTEXT}\nSummarise it.")
    turn(plain, b, "Unrelated: what is a monad?")
    _, stats = turn(plain, a, "Now write a unit test for process_item.")
    if parallel == 1:
        assert stats["cached_tokens"] < 0.2 * stats["prompt_tokens"]
    else:
        assert stats["cached_tokens"] >= 0.9 * stats["prompt_tokens"]


def test_memory_stays_within_the_budget_through_the_engine(engine, make_service) -> None:
    budget = 40 * 2**20  # about two states of these chats (23 KB a token for the test model)
    service = make_service(engine.model_path, KVCache(budget))
    for n in range(5):
        turn(service, service.new_chat(), f"Chat {n}: {CONTEXT}")
        assert 0 < service.engine.cache.ram_bytes <= budget
    assert len(service.engine.cache) < 5, "older states were evicted"


def state(n: int, size: int) -> tuple[np.ndarray, bytearray]:
    return np.arange(n, dtype=np.int32), bytearray([n % 251]) * size


def test_lru_eviction_spills_to_disk_within_its_budget(tmp_path: Path) -> None:
    cache = KVCache(ram_budget=2500, disk_dir=tmp_path, disk_budget=2500)
    for n in range(1, 6):
        cache.put(f"chat{n}", *state(n * 10, 1000))
        assert cache.ram_bytes <= 2500 and cache.disk_bytes <= 2500
    assert sorted(cache._ram) == ["chat4", "chat5"] and sorted(cache._disk) == ["chat2", "chat3"]
    assert len(list(tmp_path.glob("*.kv"))) == 2
    snapshot, prefix = cache.best(np.arange(100, dtype=np.int32))  # type: ignore[misc]
    assert (snapshot.key, prefix) == ("chat5", 50)
    spilled, _ = cache.best(np.arange(25, dtype=np.int32))  # type: ignore[misc]
    assert cache.load(spilled) is not None
    disk_state = next(s for s in cache._disk.values() if s.key == "chat2")
    assert cache.load(disk_state) == state(20, 1000)[1], "a spilled state comes back byte for byte"


def test_a_state_bigger_than_the_budget_is_not_kept() -> None:
    cache = KVCache(ram_budget=100)
    cache.put("huge", *state(5, 1000))
    assert cache.ram_bytes == 0 and len(cache) == 0


def test_common_prefix() -> None:
    a = np.array([1, 2, 3, 4], dtype=np.int32)
    assert common_prefix(a, np.array([1, 2, 9], dtype=np.int32)) == 2
    assert common_prefix(a, a[:2]) == 2 and common_prefix(a, np.array([], dtype=np.int32)) == 0


def slow_source(n: int, delay: float, stopped: threading.Event) -> Iterator[int]:
    try:
        for i in range(n):
            time.sleep(delay)
            yield i
    finally:
        stopped.set()


def test_streaming_batches_after_the_first_item() -> None:
    stopped = threading.Event()
    started = time.monotonic()
    batches = list(in_background(slow_source(40, 0.005, stopped), interval=0.05))
    assert [i for b in batches for i in b] == list(range(40))
    assert batches[0] == [0] and len(batches) < 20, "the first item at once, then a few batches"
    assert time.monotonic() - started < 2 and stopped.is_set()


def test_closing_the_stream_stops_the_source() -> None:
    stopped = threading.Event()
    with closing(in_background(slow_source(10_000, 0.01, stopped), interval=0.0)) as batches:
        next(batches)
    assert stopped.is_set(), "the source is closed before close() returns"


def test_errors_in_the_source_reach_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("model broke")

    got = []
    with pytest.raises(RuntimeError, match="model broke"):
        for batch in in_background(failing(), interval=0.0):
            got += batch
    assert got == [1]

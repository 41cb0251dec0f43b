"""Redis in trouble, against a live app: a Redis that hangs is reported within seconds while the
app stays alive, and a wrong password is named as such, not passed off as an outage."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from chmocoder.redis_server import EmbeddedRedis, free_port

from .conftest import LiveServer


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, to hang; stopped even when the test fails (it was left running)."""
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    yield redis
    redis.stop()


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def test_a_hung_redis_is_reported_within_seconds_and_liveness_stays_quick(
    start_server: Callable[..., LiveServer], own_redis: EmbeddedRedis
) -> None:
    """A stopped (SIGSTOP) Redis accepts connections and never answers: requests waited 5 s per call,
    retried three times, so REST took 52 s and /history 84 s to say anything."""
    redis = own_redis
    assert redis.process is not None
    server = start_server(redis.url)
    chat_id = Client(server.url, verbose=False).predict(api_name="/new_chat")
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        read, read_s = timed(lambda: httpx.get(server.url + f"api/chats/{chat_id}", timeout=60))
        assert read.status_code == 503 and "unreachable" in read.json()["detail"]
        assert read_s < 5, f"the REST read took {read_s:.1f} s to report the hung Redis"
        ready, ready_s = timed(lambda: httpx.get(server.url + "readyz", timeout=60))
        assert ready.status_code == 503 and ready_s < 5
        alive, alive_s = timed(lambda: httpx.get(server.url + "healthz", timeout=60))
        assert alive.status_code == 200 and alive_s < 1
        for _ in range(3):
            assert httpx.get(server.url + f"api/chats/{chat_id}", timeout=60).status_code == 503
        # Each read waited for Redis twice, the rate limit's count first (3.2 s a read): the limits
        # are skipped for a while once Redis failed them, and the log says so once, not per request.
        assert server.log().count("rate limits unavailable") == 1, server.log()
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    assert httpx.get(server.url + f"api/chats/{chat_id}").status_code == 200  # back as soon as Redis is


def test_a_wrong_redis_password_is_named_in_readyz_and_the_log(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port(), password="right-password").start()
    try:
        server = start_server(redis.url.replace("right-password", "wrong-password"), until="healthz")
        ready = httpx.get(server.url + "readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "chat storage (Redis) refused the server's password; tell the operator"
        assert "Redis refused our credentials" in server.log()
    finally:
        redis.stop()


def test_an_answer_finished_while_redis_hangs_is_kept_and_written_when_it_is_back(
    start_server: Callable[..., LiveServer], tmp_path: Path, own_redis: EmbeddedRedis
) -> None:
    """Redis hung while an answer was being written: the finished answer was discarded and the user
    shown an error. Now it waits in the journal and reaches the chat once Redis answers again."""
    redis = own_redis
    assert redis.process is not None
    journal = tmp_path / "journal"
    server = start_server(redis.url, journal_dir=str(journal), max_new_tokens_limit="300")
    client = Client(server.url, verbose=False)
    chat_id = client.predict("write", "intermediate", api_name="/new_chat")
    job = client.submit(chat_id, "Write a long essay about the history of Python.", None, None, None, 300,
                        api_name="/chat")  # fmt: skip
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(redis.process.pid, signal.SIGSTOP)  # the question is saved; the answer is being written
    try:
        answer = job.result(timeout=120)
        assert len(answer) > 200, "the user still gets the whole answer"
        assert len(list(journal.glob("*.json"))) == 1, "the answer waits in the journal"
        assert "kept in the journal" in server.log()
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while list(journal.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    stored = httpx.get(server.url + f"api/chats/{chat_id}").json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[-1]["content"] == answer and not list(journal.glob("*.json"))


def test_a_replayed_answer_lands_after_its_own_question_and_only_once(tmp_path: Path) -> None:
    """The journal is written before the chat's next turn, and a save that did reach Redis before
    timing out is not written twice."""
    from chmocoder.journal import Journal
    from chmocoder.store import ChatStore

    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    try:
        store = ChatStore.from_url(redis.url, 3600)
        chat_id = store.create("write", "intermediate")
        store.append(chat_id, {"role": "user", "content": "first question"})
        answer = {"role": "assistant", "content": "first answer", "at": 1.0}
        store.append(chat_id, answer)  # it reached Redis, but the app saw a timeout and journaled it too
        journal = Journal(tmp_path / "journal", max_entries=2)
        assert journal.add(chat_id, answer) and journal.add(chat_id, {"role": "assistant", "content": "x"})
        assert not journal.add(chat_id, {"role": "assistant", "content": "y"}), "the journal is bounded"
        assert journal.replay(store, chat_id) == 2
        assert [m["content"] for m in store.messages(chat_id)] == ["first question", "first answer", "x"]
        assert len(journal) == 0
    finally:
        redis.stop()

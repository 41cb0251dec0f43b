"""bench/load.py's machinery, small: three users (gradio_client, /v1, REST), one turn each, on a live app.

The Locust users run in a process of their own (bench/load_users.py): locust monkey-patches for gevent
on import, which must not reach this test runner.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.load import Options, check_store, run_load
from bench.loopback import loopback_only
from chmocoder.redis_server import EmbeddedRedis, free_port
from chmocoder.store import ChatStore

from .live_server import LiveServer

SMOKE = Options(turns=1, time_limit_s=60.0, max_tokens=24)  # the limit only bounds a stuck run


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own: the check reads every chat in it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("load-redis"), port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smoke_run(
    start_module_server: Callable[..., LiveServer], own_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    server = start_module_server(own_redis.url, verify_enabled="false", parallel="4")  # the product's default
    store = ChatStore.from_url(own_redis.url, 3600)
    return run_load(server.url, store, 3, SMOKE, tmp_path_factory.mktemp("load")) | {"app_log": server.log()[-2000:]}


def test_three_users_at_once_are_answered_and_nothing_is_lost(smoke_run: dict) -> None:
    row = smoke_run
    assert row["users_by_kind"] == {"gradio": 1, "v1": 1, "rest": 1}, "one user of each kind"
    assert row["errors"] == 0, row["errors_seen"]
    assert row["completed"] + row["rejected"] == row["requests"] > 0
    # Two questions against a queue of 32: neither may be refused, and both are answered with text.
    assert row["answers_asked"] == row["answers_completed"] == 2, row["by_call"]
    answers = [r for r in row["records"] if r["call"] in ("/chat", "/v1/chat/completions")]
    assert all(r["text"].strip() and r["ttft_s"] is not None for r in answers), answers
    assert row["lost"] == 0, (row["check"]["lost"], row["app_log"])
    assert row["left_behind_by_refusals"] == 0, row["check"]["left_behind_by_refusals"]
    assert row["check"]["unanswered_questions_by_client_outcome"] == {}
    assert row["ttft_p50_s"] is not None and row["wall_s"] < SMOKE.time_limit_s


def test_an_answer_changed_in_redis_is_counted_lost(smoke_run: dict, own_redis: EmbeddedRedis) -> None:
    """The check can fail: alter one stored answer behind the app's back and it is reported."""
    store = ChatStore.from_url(own_redis.url, 3600)
    answered = next(r for r in smoke_run["records"] if r["call"] == "/chat" and r["outcome"] == "completed")
    messages_key = ChatStore.keys(answered["chat_id"])[1]
    stored = json.loads(store.client.lindex(messages_key, -1))
    store.client.lset(messages_key, -1, json.dumps(stored | {"content": stored["content"][:-5]}))
    try:
        lost = check_store(smoke_run["records"], store)["lost"]
        assert [x["question"] for x in lost] == [answered["question"]]
        assert "differs" in lost[0]["why"]
    finally:
        store.client.lset(messages_key, -1, json.dumps(stored))


def test_load_goes_to_this_machine_only(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:7860/", "http://localhost:7860/", "http://[::1]:7860/", "unix:///tmp/r.sock"):
        assert loopback_only(url) == url
    for url in ("http://10.0.0.5:7860/", "http://192.168.1.2/", "http://example.org/", "http://0.0.0.0:7860/"):
        with pytest.raises(SystemExit, match="not a loopback address"):
            loopback_only(url)

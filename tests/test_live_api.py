"""The named gradio_client endpoints against a live `python app.py` process."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
import redis
from gradio_client import Client
from gradio_client.exceptions import AppError

from chmocoder.store import ChatStore

from .conftest import LiveServer

CODE = """Why does this print None?

```python
def total(items):
    result = 0
    for item in items:
        if item > 0:
            result += item
    print(result)

x = total([1, -2, 3])
print(x)
```"""


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Client:
    return Client(live.url, verbose=False)


def test_a_chat_streams_and_is_kept(client: Client) -> None:
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    job = client.submit(chat_id, "Write a Python function that reverses a string.", api_name="/chat")
    updates = list(job)
    final = job.result()
    assert len(updates) >= 3, f"expected a stream of updates, got {len(updates)}"
    assert updates[-1] == final and final.strip()
    assert all(updates[i + 1].startswith(updates[i]) for i in range(len(updates) - 1))
    history = client.predict(chat_id, api_name="/history")
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Write a Python function that reverses a string."),
        ("assistant", final),
    ]
    assert history[1]["verdict"]["status"] in ("verified", "failed", "not_checked"), "code answers carry a verdict"


def test_indented_code_is_stored_and_returned_exactly(client: Client, redis_client: redis.Redis) -> None:
    chat_id = client.predict("debug", "beginner", api_name="/new_chat")
    client.submit(chat_id, CODE, api_name="/chat").result()
    assert client.predict(chat_id, api_name="/history")[0]["content"] == CODE
    raw = redis_client.lindex(ChatStore.keys(chat_id)[1], 0)
    assert '"content": "Why does this print None?\\n\\n```python\\ndef total(items):\\n    result = 0' in raw


def test_messages_and_ttls_are_in_redis(client: Client, redis_client: redis.Redis) -> None:
    chat_id = client.predict("explain", "expert", api_name="/new_chat")
    client.submit(chat_id, "What does `lambda x: x * 2` do?", api_name="/chat").result()
    meta_key, messages_key = ChatStore.keys(chat_id)
    assert redis_client.llen(messages_key) == 2
    assert redis_client.hget(meta_key, "task") == "explain"
    assert redis_client.hget(meta_key, "title") == "What does lambda x: x * 2 do?", "plain text, not Markdown"
    for key in (meta_key, messages_key):
        assert 86_000 < redis_client.ttl(key) <= 86_400


@pytest.mark.parametrize(
    ("message", "reason"),
    [("", "empty"), ("x" * 200_000, "200,000 characters"), ("\x00\x01\x02ELF\x00binary", "binary")],
)
def test_bad_messages_get_clear_errors(client: Client, message: str, reason: str) -> None:
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    client.submit(chat_id, "Say hello.", api_name="/chat").result()
    before = client.predict(chat_id, api_name="/history")
    with pytest.raises(AppError, match=reason):
        client.submit(chat_id, message, api_name="/chat").result()
    assert client.predict(chat_id, api_name="/history") == before


@pytest.mark.parametrize("chat_id", ["does-not-exist", "A" * 32, ""])
def test_unknown_chat_ids_get_clear_errors(client: Client, chat_id: str) -> None:
    with pytest.raises(AppError, match="unknown chat id"):
        client.submit(chat_id, "hello", api_name="/chat").result()
    with pytest.raises(AppError, match="unknown chat id"):
        client.predict(chat_id, api_name="/history")


def test_bad_task_and_limits_are_refused(client: Client) -> None:
    with pytest.raises(AppError, match="unknown task"):
        client.predict("hack", "beginner", api_name="/new_chat")
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    with pytest.raises(AppError, match="max new tokens"):
        client.submit(chat_id, "hi", None, None, None, 10**7, api_name="/chat").result()


def test_cancel_stops_generation_and_keeps_the_partial_answer(client: Client) -> None:
    chat_id = client.predict("write", "expert", api_name="/new_chat")
    job = client.submit(
        chat_id, "Write a long, detailed tutorial on Python generators.", None, None, None, 1000, api_name="/chat"
    )
    deadline = time.monotonic() + 60
    while len(job.outputs()) < 3:
        assert time.monotonic() < deadline, "the answer should stream"
        time.sleep(0.02)
    job.cancel()
    deadline = time.monotonic() + 30
    history: list[dict] = []
    while time.monotonic() < deadline:
        history = client.predict(chat_id, api_name="/history")
        if len(history) == 2:
            break
        time.sleep(0.1)
    assert history[-1]["stopped"] is True
    assert history[-1]["content"] and len(history[-1]["content"]) < 2000
    started = time.monotonic()
    other = client.predict("write", "beginner", api_name="/new_chat")
    assert client.submit(other, "Say hi.", api_name="/chat").result()
    assert time.monotonic() - started < 30, "the model must be free again after a cancel"


def test_api_page_documents_the_named_endpoints(live: LiveServer) -> None:
    info = httpx.get(live.url + "gradio_api/info", timeout=10).json()
    named = info["named_endpoints"]

    assert not info["unnamed_endpoints"]
    assert set(named) == {
        "/new_chat",
        "/chat",
        "/history",
        "/list_chats",
        "/search_chats",
        "/keep_chat",
        "/rate_answer",
        "/delete_chat",
        "/remove_chat",
        "/run_code",
    }, "UI steps stay hidden"
    chat = named["/chat"]
    assert [p["parameter_name"] for p in chat["parameters"]][:7] == [
        "chat_id",
        "message",
        "task",
        "level",
        "temperature",
        "max_tokens",
        "instructions",
    ]
    assert "stream the answer" in chat["description"].lower()


def test_run_code_gives_output_and_exit_status(client: Client) -> None:
    ran = client.predict("def add(a, b):\n    return a + b\n\nprint(add(2, 3))", api_name="/run_code")
    assert ran["stdout"] == "5\n" and ran["exit_code"] == 0 and ran["status"] == "ok"
    assert ran["stderr"] == "" and 0 < ran["duration_s"] < 30
    failed = client.predict("print('before')\n1 / 0", api_name="/run_code")
    assert failed["stdout"] == "before\n" and failed["exit_code"] == 1 and failed["status"] == "error"
    assert "ZeroDivisionError: division by zero" in failed["stderr"]


def test_run_code_refuses_empty_and_oversized_code(client: Client) -> None:
    with pytest.raises(AppError, match="there is no code to run"):
        client.predict("   \n", api_name="/run_code")
    with pytest.raises(AppError, match="the limit is 50,000"):
        client.predict("x = 1\n" * 10_000, api_name="/run_code")


def test_restart_keeps_the_chat(start_server: Callable[..., LiveServer], redis_server) -> None:
    first = start_server(redis_server.url)
    client = Client(first.url, verbose=False)
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    answer = client.submit(chat_id, "Write hello world in C.", api_name="/chat").result()
    first.stop()
    second = start_server(redis_server.url)
    client = Client(second.url, verbose=False)
    history = client.predict(chat_id, api_name="/history")
    assert [m["content"] for m in history] == ["Write hello world in C.", answer]
    client.submit(chat_id, "Now in Rust.", api_name="/chat").result()
    assert len(client.predict(chat_id, api_name="/history")) == 4


def test_embedded_redis_keeps_chats_across_restarts(start_server: Callable[..., LiveServer], tmp_path) -> None:
    """No CHMOCODER_REDIS_URL: the app runs its own Redis with an append-only file in data_dir."""
    data_dir = tmp_path / "data"
    first = start_server("", data_dir=str(data_dir))
    client = Client(first.url, verbose=False)
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    answer = client.submit(chat_id, "Print 1 to 3 in Python.", api_name="/chat").result()
    first.stop()
    assert list(data_dir.glob("appendonly*")), "the embedded Redis must persist to an append-only file"
    # It stops with the app. (It was left running: the lifespan's clean-up and the main thread's both
    # ran, the second returned at once because the first held the lock, and the process exited
    # before the first had stopped Redis.)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=2).ping()
    second = start_server("", data_dir=str(data_dir))
    history = Client(second.url, verbose=False).predict(chat_id, api_name="/history")
    assert [m["content"] for m in history] == ["Print 1 to 3 in Python.", answer]
    second.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=2).ping()

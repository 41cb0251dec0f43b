"""The model's queue holds only what needs the model: reads, chat-list changes and runs of code never
wait in it and are never refused because it is full."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from gradio_client import Client

from .busy_model import LONG_ANSWER, LONG_TOKENS, give_up, occupy_model, still_running
from .live_server import LiveServer
from .test_programmatic import readme_example

# A read answers at once; this bound only has to tell "answered" from "waited for the essay" (minutes).
READ_S = 20.0


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    return call(), time.monotonic() - started


def wait_until_queued(job: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.status().code.name in ("QUEUE", "IN_QUEUE"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the second question should wait in the model's queue; it is {job.status().code}")


def test_a_full_model_queue_refuses_only_model_work(start_server: Callable[..., LiveServer], redis_server) -> None:
    server = start_server(
        redis_server.url, parallel="1", queue_max_size="1", max_new_tokens=str(LONG_TOKENS), **LONG_ANSWER
    )
    client = Client(server.url, verbose=False)
    owner = secrets.token_urlsafe(32)
    kept = client.predict("explain", "beginner", owner, api_name="/new_chat")
    essay = occupy_model(server)
    waiting = None
    try:
        waiting = client.submit(kept, "Explain list slicing.", api_name="/chat")
        wait_until_queued(waiting)  # the model's queue (one place) is now full

        refused = client.submit(client.predict(api_name="/new_chat"), "What is a lambda?", api_name="/chat")
        with pytest.raises(Exception, match="(?i)busy|full"):
            refused.result(timeout=READ_S)

        reads = {
            "/new_chat": lambda: client.predict("write", "expert", owner, api_name="/new_chat"),
            "/history": lambda: client.predict(kept, api_name="/history"),
            "/list_chats": lambda: client.predict(owner, api_name="/list_chats"),
            "/run_code": lambda: client.predict("print(6 * 7)", api_name="/run_code"),
        }
        for name, call in reads.items():
            result, took = timed(call)
            assert took < READ_S, f"{name} waited {took:.1f} s behind the model"
            assert result is not None, name
        removed, deleted = (client.predict("write", "expert", owner, api_name="/new_chat") for _ in range(2))
        assert {removed, deleted, kept} <= {c["id"] for c in client.predict(owner, api_name="/list_chats")}
        assert client.predict(removed, owner, api_name="/remove_chat") is True
        assert client.predict(deleted, owner, api_name="/delete_chat") is True
        assert {c["id"] for c in client.predict(owner, api_name="/list_chats")} & {removed, deleted} == set()
        assert "42" in client.predict("print(6 * 7)", api_name="/run_code")["stdout"]
        # The README's examples, run as a reader pastes them, say they were not answered and return.
        out = readme_example("gradio_client", server.url)
        assert "not answered: Queue is full" in out, out
        assert out.rstrip().endswith("True"), "and go on: the history, the list, the chat deleted"
        assert "not answered:" in readme_example("from openai import", server.url)
        still_running(essay)  # all of it happened while the model was busy and its queue full
    finally:
        give_up(essay)
        if waiting is not None:
            waiting.cancel()

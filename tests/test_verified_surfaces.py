"""The verdict on an answer's code reaches every surface of a live app: /v1, gradio_client, REST, downloads."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from gradio_client import Client
from openai import OpenAI

from .conftest import TEST_MODEL, LiveServer
from .test_verify import FALSE_CLAIM, TRUE_CLAIM


@pytest.fixture(scope="module")
def ai(live: LiveServer) -> OpenAI:
    return OpenAI(base_url=live.url + "v1", api_key="unused", max_retries=0)


def test_v1_answers_carry_the_verdict(ai: OpenAI) -> None:
    reply = ai.chat.completions.create(model=TEST_MODEL, messages=[{"role": "user", "content": TRUE_CLAIM}])
    assert reply.model_extra is not None
    assert reply.model_extra["chmocoder"]["verdict"]["summary"] == "verified: 1/1 checks passed"
    assert "print(add(2, 3))  # Output: 5" in (reply.choices[0].message.content or "")


def test_v1_stream_shows_a_repair_after_a_separator_and_ends_with_the_verdict(ai: OpenAI) -> None:
    stream = ai.chat.completions.create(
        model=TEST_MODEL, messages=[{"role": "user", "content": FALSE_CLAIM}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "*1 of 1 checks fails: the corrected answer follows.*" in text
    assert text.index("# Output: 6") < text.index("the corrected answer follows"), "the draft came first"
    last = chunks[-1].model_extra or {}
    assert last["chmocoder"]["verdict"]["repairs"] >= 1 and last["chmocoder"]["attempts"] >= 1


def test_history_transcript_and_downloads_show_the_verdict(live: LiveServer) -> None:
    client = Client(live.url, verbose=False)
    chat_id = client.predict("write", "beginner", None, api_name="/new_chat")
    client.predict(chat_id, TRUE_CLAIM, api_name="/chat")
    history = client.predict(chat_id, api_name="/history")
    assert history[-1]["verdict"]["summary"] == "verified: 1/1 checks passed"
    transcript = httpx.get(f"{live.url}api/chats/{chat_id}").json()
    assert transcript["messages"][-1]["verdict"]["status"] == "verified"
    assert transcript["messages"][-1]["verdict"]["checks"][0]["label"] == "print(add(2, 3))  → 5"
    markdown = httpx.get(f"{live.url}download/chats/{chat_id}?format=markdown").text
    assert "*Checked: verified: 1/1 checks passed*" in markdown
    document = json.loads(httpx.get(f"{live.url}download/chats/{chat_id}?format=json").text)
    assert document["messages"][-1]["verdict"]["passed"] == 1


def test_the_app_keeps_serving_while_code_runs_to_its_time_limit(
    start_server: Callable[..., LiveServer], redis_server
) -> None:
    # A 20 s limit: at 5 s, a full CI-like run once saw the short answer below arrive after the limit.
    live = start_server(redis_server.url, sandbox_time_limit_s="20")
    client = Client(live.url, verbose=False)
    spinning = client.submit("while True:\n    pass", api_name="/run_code")
    time.sleep(0.5)  # let the run start; the checks below happen while it spins
    assert httpx.get(live.url + "healthz", timeout=2).status_code == 200
    chat_id = client.predict("write", "beginner", None, api_name="/new_chat")
    answer = client.predict(chat_id, "Say hello.", None, None, None, 8, api_name="/chat")  # a short answer
    assert answer, "another user's question is answered meanwhile"
    assert not spinning.done(), "the answer came while the code was still running"
    result = spinning.result(timeout=60)
    assert result["status"] == "timeout" and result["message"] == "stopped after 20 s (the time limit)"
    assert client.predict("print('next')", api_name="/run_code")["stdout"] == "next\n"

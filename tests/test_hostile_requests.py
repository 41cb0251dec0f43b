"""Requests a hostile or careless client sends, against a live app: each gets a clear 4xx, nothing is
stored, and the server keeps answering everyone else meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from gradio_client import Client

from chmocoder.model_files import resolve_model

from .conftest import TEST_MODEL, LiveServer, make_settings
from .test_programmatic import metric

JSON = {"Content-Type": "application/json"}


def post(live: LiveServer, path: str, body: str) -> httpx.Response:
    """A raw body: NaN, Infinity and lone surrogates are what Python's JSON parser accepts but no
    JSON library of a client would write."""
    return httpx.post(live.url + path, content=body.encode(), headers=JSON, timeout=60)


def test_nan_and_infinity_are_refused_with_the_field_named_not_a_500(live: LiveServer) -> None:
    for number in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"messages": [{{"role": "user", "content": "hi"}}], "temperature": {number}}}'
        refused = post(live, "v1/chat/completions", body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"].startswith("temperature must be ")

        rest = post(live, "api/chats", f'{{"task": {number}}}')
        assert rest.status_code == 422, rest.text
        assert rest.json()["detail"][0]["loc"] == ["body", "task"]


def test_a_lone_surrogate_is_refused_with_a_clear_message_and_nothing_is_stored(live: LiveServer) -> None:
    broken = '"fix this \\ud800 please"'
    stateless = post(live, "v1/chat/completions", f'{{"messages": [{{"role": "user", "content": {broken}}}]}}')
    assert stateless.status_code == 400, stateless.text
    assert "lone UTF-16 surrogate" in stateless.json()["error"]["message"]
    earlier = f'{{"messages": [{{"role": "user", "content": {broken}}}, {{"role": "user", "content": "and?"}}]}}'
    assert "message 1 has an invalid character" in post(live, "v1/chat/completions", earlier).json()["error"]["message"]

    client = Client(live.url, verbose=False)
    chat_id = client.predict(api_name="/new_chat")
    bound = f'{{"chat_id": "{chat_id}", "messages": [{{"role": "user", "content": {broken}}}]}}'
    stored = post(live, "v1/chat/completions", bound)
    assert stored.status_code == 400 and "position 9" in stored.json()["error"]["message"]
    assert client.predict(chat_id, api_name="/history") == []  # nothing half-written


def test_a_model_given_as_a_path_is_named_without_it(
    start_server: Callable[..., LiveServer], redis_server, tmp_path
) -> None:
    settings = make_settings(redis_server.url)
    path = resolve_model(TEST_MODEL, settings.models_dir, settings.catalog_file).resolve()
    server = start_server(redis_server.url, model=str(path))
    models = httpx.get(server.url + "v1/models").json()["data"]
    assert [m["id"] for m in models] == [path.name]
    assert str(path.parent) not in httpx.get(server.url + "v1/models").text


def test_a_thousand_message_conversation_does_not_stall_the_server(live: LiveServer) -> None:
    """Fitting a long conversation to the window re-tokenized all of it for every message it dropped,
    inside the async handler: a 1,000-message request froze /healthz and every page for seconds."""
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": f"note {i}: keep it short"} for i in range(999)]
    messages.append({"role": "user", "content": "Say OK."})
    answer: dict[str, httpx.Response] = {}

    def send() -> None:
        body = {"messages": messages, "max_tokens": 4, "temperature": 0}
        answer["response"] = httpx.post(live.url + "v1/chat/completions", json=body, timeout=120)

    sender = threading.Thread(target=send)
    sender.start()
    slowest = 0.0
    while sender.is_alive():
        started = time.monotonic()
        assert httpx.get(live.url + "healthz", timeout=30).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    sender.join()
    assert answer["response"].status_code == 200, answer["response"].text
    usage = answer["response"].json()["usage"]
    assert usage["prompt_tokens"] <= 2048 - 4  # the oldest notes were dropped to fit the window
    # It froze for 24.9 s before; under the full suite's load a probe was once seen at 1.3 s.
    assert slowest < 5.0, f"/healthz took {slowest:.1f} s while the conversation was fitted"


def test_a_client_leaving_out_task_and_level_gets_the_defaults_not_a_storage_error(live: LiveServer) -> None:
    client = Client(live.url, verbose=False)
    chat_id = client.predict(None, None, api_name="/new_chat")
    assert client.predict(chat_id, api_name="/history") == []
    chats = httpx.get(live.url + f"api/chats/{chat_id}").json()
    assert (chats["task"], chats["level"]) == ("auto", "intermediate"), "the task is picked from each message"


def test_a_huge_body_is_refused_before_it_is_read(live: LiveServer) -> None:
    huge = b'{"messages": [{"role": "user", "content": "' + b"x" * (20 * 2**20) + b'"}]}'
    refused = httpx.post(live.url + "v1/chat/completions", content=huge, headers=JSON, timeout=60)
    assert refused.status_code == 413
    assert refused.json()["error"]["message"] == "the request body is larger than 8,388,608 bytes"
    rest = httpx.post(live.url + "api/chats", content=b'{"task": "' + b"w" * (9 * 2**20) + b'"}', headers=JSON)
    assert rest.status_code == 413 and "larger than" in rest.json()["detail"]
    assert httpx.get(live.url + "healthz").status_code == 200


def test_a_non_streaming_client_that_leaves_frees_the_model(live: LiveServer) -> None:
    """It kept the model writing to the end for nobody (739 tokens; the next user waited 14.7 s)."""
    stopped = 'chmocoder_turns_total{outcome="stopped"}'
    before = metric(live, stopped)
    essay = "Write a very long essay about the history of computing."
    body = {"messages": [{"role": "user", "content": essay}], "max_tokens": 1500}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up after 2 s and closes its connection
        httpx.post(live.url + "v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=2))
    deadline = time.monotonic() + 15
    while metric(live, stopped) == before:
        assert time.monotonic() < deadline, "the turn should stop when its client goes away, not run to its end"
        time.sleep(0.2)

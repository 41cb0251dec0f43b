"""Scripts, editors and operators: the openai package, gradio_client, REST, API keys, health and metrics."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from openai import APIStatusError, AuthenticationError, OpenAI

from chmocoder.redis_server import EmbeddedRedis, free_port
from chmocoder.settings import PROJECT_ROOT

from .conftest import TEST_MODEL, LiveServer


@pytest.fixture(scope="module")
def ai(live: LiveServer) -> OpenAI:
    return OpenAI(base_url=live.url + "v1", api_key="unused", max_retries=0)


def metric(live: LiveServer, name: str) -> float:
    for line in httpx.get(live.url + "metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_openai_models(ai: OpenAI) -> None:
    assert [m.id for m in ai.models.list().data] == [TEST_MODEL]


def test_openai_completion_honours_max_tokens_and_stop(ai: OpenAI) -> None:
    messages = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
    short = ai.chat.completions.create(model=TEST_MODEL, messages=messages, max_tokens=5, temperature=0)
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 5
    cut = ai.chat.completions.create(model=TEST_MODEL, messages=messages, max_tokens=60, temperature=0, stop=["\n"])
    assert cut.choices[0].message.content and "\n" not in cut.choices[0].message.content
    full = ai.chat.completions.create(model=TEST_MODEL, messages=messages, max_tokens=60, temperature=0, top_p=0.5)
    assert "\n" in (full.choices[0].message.content or "")


def test_openai_streaming(ai: OpenAI) -> None:
    stream = ai.chat.completions.create(
        model=TEST_MODEL,
        messages=[
            {"role": "system", "content": "You answer in one sentence."},
            {"role": "user", "content": "What is Python?"},
        ],
        max_tokens=40,
        temperature=0,
        stream=True,
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 5 and "".join(pieces).strip()
    assert chunks[-1].choices[0].finish_reason in {"stop", "length"}


def test_openai_errors_are_openai_shaped(ai: OpenAI) -> None:
    with pytest.raises(APIStatusError) as refused:
        ai.chat.completions.create(model=TEST_MODEL, messages=[{"role": "user", "content": "  "}])
    assert refused.value.status_code == 400 and "empty" in refused.value.message
    with pytest.raises(APIStatusError) as refused_stream:  # refused before the stream starts, not inside it
        ai.chat.completions.create(model=TEST_MODEL, messages=[{"role": "user", "content": "  "}], stream=True)
    assert refused_stream.value.status_code == 400
    with pytest.raises(APIStatusError) as unknown:
        ai.chat.completions.create(
            model=TEST_MODEL, messages=[{"role": "user", "content": "hi"}], extra_headers={"X-ChMOCoder-Chat": "A" * 32}
        )
    assert unknown.value.status_code == 404
    with pytest.raises(APIStatusError) as bad:
        ai.chat.completions.create(model=TEST_MODEL, messages=[{"role": "user", "content": "hi"}], temperature=9)
    # A setting out of range is refused by the chat service, the one place that checks it: 400, OpenAI's shape.
    assert bad.value.status_code == 400
    assert bad.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "temperature must be between 0 and 2" in bad.value.message


def test_a_chat_moves_from_v1_to_gradio_client_to_rest(ai: OpenAI, live: LiveServer) -> None:
    raw = ai.chat.completions.with_raw_response.create(
        model=TEST_MODEL,
        messages=[{"role": "user", "content": "Started in an editor: what is a list?"}],
        extra_headers={"X-ChMOCoder-Chat": "new"},
        max_tokens=30,
    )
    chat_id = raw.headers["X-ChMOCoder-Chat"]
    first = raw.parse().choices[0].message.content
    client = Client(live.url, verbose=False)
    second = client.submit(chat_id, "Continued from Python: and a tuple?", api_name="/chat").result()
    transcript = httpx.get(f"{live.url}api/chats/{chat_id}").json()
    assert [(m["role"], m["content"]) for m in transcript["messages"]] == [
        ("user", "Started in an editor: what is a list?"),
        ("assistant", first),
        ("user", "Continued from Python: and a tuple?"),
        ("assistant", second),
    ]


def test_a_client_that_disconnects_frees_the_model(ai: OpenAI, live: LiveServer) -> None:
    stopped_before = metric(live, 'chmocoder_turns_total{outcome="stopped"}')
    stream = ai.chat.completions.create(
        model=TEST_MODEL,
        messages=[{"role": "user", "content": "Write a very long essay about the history of computing."}],
        max_tokens=3000,
        stream=True,
    )
    for n, _ in enumerate(stream):
        if n == 5:
            break
    stream.close()
    deadline = time.monotonic() + 20
    while metric(live, 'chmocoder_turns_total{outcome="stopped"}') == stopped_before:
        assert time.monotonic() < deadline, "the generation should stop when the client goes away"
        time.sleep(0.1)
    started = time.monotonic()
    ai.chat.completions.create(model=TEST_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=10)
    assert time.monotonic() - started < 10


def test_every_gradio_client_endpoint(live: LiveServer) -> None:
    client = Client(live.url, verbose=False)
    me, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    chat_id = client.predict("explain", "beginner", me, api_name="/new_chat")
    answer = client.submit(chat_id, "What does `len` do?", api_name="/chat").result()
    assert client.predict(chat_id, api_name="/history")[-1] == {"role": "assistant", "content": answer}
    listed = client.predict(me, api_name="/list_chats")
    assert [c["id"] for c in listed] == [chat_id] and listed[0]["title"] == "What does len do?"
    assert client.predict(other, api_name="/list_chats") == []
    with pytest.raises(AppError, match="only the person who started this chat can delete it"):
        client.predict(chat_id, other, api_name="/delete_chat")
    with pytest.raises(AppError, match="not in your list"):
        client.predict(chat_id, other, api_name="/remove_chat")
    assert client.predict(chat_id, me, api_name="/delete_chat") is True
    with pytest.raises(AppError, match="unknown chat id"):
        client.predict(chat_id, api_name="/history")


def test_rest_api(live: LiveServer) -> None:
    api = live.url + "api"
    me, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    created = httpx.post(f"{api}/chats", json={"task": "debug", "level": "expert"}, headers={"X-ChMOCoder-Owner": me})
    assert created.status_code == 201
    chat_id = created.json()["id"]
    Client(live.url, verbose=False).submit(chat_id, "Why is 0.1 + 0.2 != 0.3?", api_name="/chat").result()
    chat = httpx.get(f"{api}/chats/{chat_id}").json()
    assert chat["task"] == "debug" and [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    assert [c["id"] for c in httpx.get(f"{api}/chats", headers={"X-ChMOCoder-Owner": me}).json()] == [chat_id]
    markdown = httpx.get(f"{api}/chats/{chat_id}/export", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown") and "0.1 + 0.2" in markdown.text
    assert httpx.get(f"{api}/chats/{chat_id}/export", params={"format": "json"}).json()["task"] == "debug"

    assert httpx.get(f"{api}/chats/{'A' * 32}").status_code == 404
    assert httpx.get(f"{api}/chats/{'A' * 32}").json() == {"detail": "unknown chat id (it may have expired)"}
    forbidden = httpx.delete(f"{api}/chats/{chat_id}", headers={"X-ChMOCoder-Owner": other})
    assert forbidden.status_code == 403 and "only the person who started" in forbidden.json()["detail"]
    assert httpx.post(f"{api}/chats", json={"task": "hack"}).status_code == 422
    broken = httpx.post(f"{api}/chats", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "detail" in broken.json()
    assert httpx.get(f"{api}/chats").status_code == 422, "listing needs an owner token"
    assert httpx.delete(f"{api}/chats/{chat_id}", headers={"X-ChMOCoder-Owner": me}).status_code == 204
    assert httpx.get(f"{api}/chats/{chat_id}").status_code == 404


def test_openapi_describes_the_api(live: LiveServer) -> None:
    spec = httpx.get(live.url + "openapi.json").json()
    assert {
        "/api/chats",
        "/api/chats/{chat_id}",
        "/api/chats/{chat_id}/export",
        "/v1/chat/completions",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    assert {"Transcript", "ChatSummary", "Message", "ChatCompletionRequest"} <= set(spec["components"]["schemas"])


def test_health_metrics_and_logs(live: LiveServer) -> None:
    assert httpx.get(live.url + "healthz").json() == {"status": "ok"}
    assert httpx.get(live.url + "readyz").json()["status"] == "ready"
    marker = f"secret-{secrets.token_hex(8)}"
    client = Client(live.url, verbose=False)
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    client.submit(chat_id, f"Print the string {marker}", api_name="/chat").result()
    # Sample lines, not the "# HELP" lines every metric has from import on: each was actually recorded.
    samples = {
        line.split("{")[0].split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in httpx.get(live.url + "metrics").text.splitlines()
        if line.startswith("chmocoder_") and not line.endswith(" 0.0")
    }
    for name in (
        "chmocoder_http_requests_total",
        "chmocoder_tokens_generated_total",
        "chmocoder_time_to_first_token_seconds_count",
        "chmocoder_tokens_per_second_count",
        "chmocoder_turns_total",
    ):
        assert samples.get(name, 0) > 0, f"{name} recorded nothing"
    exposed = httpx.get(live.url + "metrics").text
    assert "\nchmocoder_queue_depth " in exposed and "\nchmocoder_redis_errors_total " in exposed
    log = live.log()
    assert f"chat={chat_id}" in log and "ttft_s=" in log
    assert marker not in log, "message text never goes to the logs at INFO level"


def test_the_api_key_guards_every_route_to_a_chat_and_browsers_sign_in(
    start_server: Callable[..., LiveServer], redis_server
) -> None:
    """With the key set, /gradio_api/call/* and /download/... served transcripts that /api refused."""
    server = start_server(redis_server.url, api_key="sekret-key")
    key = {"Authorization": "Bearer sekret-key"}
    client = Client(server.url, verbose=False, headers=key)
    chat_id = client.predict("write", "beginner", api_name="/new_chat")
    client.submit(chat_id, "Say hi.", api_name="/chat").result()
    for path in (f"api/chats/{chat_id}", f"download/chats/{chat_id}", "config", "docs", "openapi.json"):
        refused = httpx.get(server.url + path)
        assert refused.status_code == 401 and refused.json() == {"detail": "a valid API key is required"}, path
        assert httpx.get(server.url + path, headers=key).status_code == 200, path
    call = httpx.post(server.url + "gradio_api/call/history", json={"data": [chat_id]})
    assert call.status_code == 401, "the page's own API is guarded too"
    assert httpx.post(server.url + "gradio_api/call/history", json={"data": [chat_id]}, headers=key).status_code == 200
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=server.url + "v1", api_key="wrong", max_retries=0).models.list()
    assert httpx.get(server.url + "v1/models").json()["error"]["code"] == "invalid_api_key"
    assert OpenAI(base_url=server.url + "v1", api_key="sekret-key").models.list().data
    for open_path in ("healthz", "readyz", "metrics"):
        assert httpx.get(server.url + open_path).status_code == 200, open_path
    with pytest.raises(Exception):  # noqa: B017, PT011 - gradio_client fails on the 401 for /config
        Client(server.url, verbose=False)

    page = httpx.get(server.url, headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
    wrong = httpx.post(server.url + "login", data={"key": "guess", "next": "/"})
    assert wrong.status_code == 401 and "That is not the access key." in wrong.text
    signed_in = httpx.post(server.url + "login", data={"key": "sekret-key", "next": "//evil.example/"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/", "never off-site"
    cookies = signed_in.cookies
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert httpx.get(server.url, cookies=cookies).status_code == 200
    assert httpx.get(f"{server.url}download/chats/{chat_id}", cookies=cookies).status_code == 200
    forged = {"chmocoder_session": "9999999999.0000"}
    assert httpx.get(f"{server.url}download/chats/{chat_id}", cookies=forged).status_code == 401


def test_every_response_carries_the_security_headers(live: LiveServer) -> None:
    for path in ("", "healthz", "api/chats/" + "A" * 32, "v1/models"):
        headers = httpx.get(live.url + path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"


def test_readyz_reports_redis_down(start_server: Callable[..., LiveServer], tmp_path) -> None:
    redis = EmbeddedRedis(tmp_path, port=free_port()).start()
    server = start_server(redis.url)
    assert httpx.get(server.url + "readyz").status_code == 200
    redis.stop()
    response = httpx.get(server.url + "readyz", timeout=10)
    assert response.status_code == 503 and "unreachable" in response.json()["reason"]
    assert httpx.get(server.url + "healthz").status_code == 200
    client = Client(server.url, verbose=False)
    with pytest.raises(AppError, match="unreachable"):
        client.predict("write", "beginner", api_name="/new_chat")
    assert metric(server, "chmocoder_redis_errors_total") >= 1


def readme_example(uses: str, url: str) -> str:
    """Run the README's Python example that uses `uses`, as a reader would paste it, against `url`."""
    blocks = re.findall(r"```python\n(.*?)```", (PROJECT_ROOT / "README.md").read_text(), re.S)
    code = next(b for b in blocks if uses in b).replace("http://127.0.0.1:7860/", url)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the README's {uses} example failed:\n{run.stderr[-2000:]}"
    return run.stdout


def test_the_readme_examples_run_as_written(live: LiveServer) -> None:
    out = readme_example("gradio_client", live.url)
    loaded, rest = out.split("\n", 1)  # gradio_client first says where it connected
    assert loaded.startswith("Loaded as API")
    answer, history, listed, deleted = rest.rstrip("\n").rsplit("\n", 3)
    first_line = answer.splitlines()[0]
    assert first_line.strip(), "the example prints the finished answer"
    assert "Why does `print(sum([1, 2, '3']))` fail?" in history and first_line in history, "and the stored chat"
    assert "'title': \"Why does print(sum([1, 2, '3'])) fail?\"" in listed, "and the owner's list of chats"
    assert deleted == "True", "and deletes it"
    assert readme_example("from openai import", live.url).strip(), "the openai example prints an answer"

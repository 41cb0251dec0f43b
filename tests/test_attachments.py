"""Files attached to a question: kept with it in a real Redis, read by the real model after the
question's text, carried by Regenerate and Edit, given back by Undo, counted in trimming (a file that
cannot fit is named, one left out with its old message is reported), refused when binary, too many
or too large; accepted by gradio_client's /chat and by /v1, shown in the transcript and the exports."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from chmocoder import export
from chmocoder.attachments import Limits, decoded, with_files
from chmocoder.chat import ChatService, TurnOptions
from chmocoder.errors import InvalidInput
from chmocoder.store import ChatStore

from .conftest import LiveServer, make_settings

SHORT = TurnOptions(max_new_tokens=16, verify=False)
CODE = "def mystery():\n    return 4217\n"
FILES = [{"name": "src/secret.py", "text": CODE}, {"name": "run.log", "text": "Traceback: KeyError: 'x'\n"}]


def prompt_text(service: ChatService, tokens: list[int]) -> str:
    model = service.engine.model  # type: ignore[attr-defined]
    return b"".join(model.piece(t, special=True) for t in tokens).decode("utf-8", "replace")


def test_attached_files_are_kept_with_the_question_and_read_by_the_model(service: ChatService) -> None:
    chat_id = service.new_chat("explain", "beginner")
    turn = service.prepare(chat_id, "What does mystery() return?", SHORT, files=FILES)
    read = prompt_text(service, turn.prompt)
    assert "What does mystery() return?" in read and "File `secret.py`:\n```python\ndef mystery():" in read
    assert "File `run.log`:" in read and "KeyError" in read

    final = list(service.send(chat_id, "What does mystery() return?", SHORT, files=FILES))[-1]
    assert final.done
    question = service.history(chat_id)[0]
    assert question["content"] == "What does mystery() return?"
    assert question["files"] == [{"name": "secret.py", "text": CODE}, FILES[1]], "the path is dropped from names"
    assert service.info(chat_id)["title"] == "What does mystery() return?"

    # A follow-up still reads the earlier file; Regenerate and Edit keep the question's files.
    follow = service.prepare(chat_id, "And why?", SHORT)
    assert "return 4217" in prompt_text(service, follow.prompt)
    list(service.regenerate(chat_id, SHORT))
    assert service.history(chat_id)[0]["files"] == question["files"]
    list(service.edit(chat_id, 0, "Explain mystery() in one line.", SHORT))
    edited = service.history(chat_id)[0]
    assert edited["content"] == "Explain mystery() in one line." and edited["files"] == question["files"]

    taken = service.take_back(chat_id)
    assert taken["files"] == question["files"] and service.history(chat_id) == []


def test_a_question_of_files_only_is_named_after_them(service: ChatService) -> None:
    chat_id = service.new_chat("debug", first_question="", first_files=FILES[1:])
    assert service.info(chat_id)["title"] == "run.log"
    assert list(service.send(chat_id, "", SHORT, files=FILES[1:]))[-1].done
    assert service.history(chat_id)[0]["files"][0]["name"] == "run.log"
    with pytest.raises(InvalidInput, match="empty"):
        service.prepare(chat_id, "  ", SHORT)


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([{"name": "a.png", "text": "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}], "a.png looks like a binary file"),
        ([{"name": f"f{i}.py", "text": "x = 1"} for i in range(6)], "at most 5"),
        ([{"name": "big.log", "text": "x" * 200_001}], "big.log is 200,001 bytes"),
        ([{"name": "", "text": "x"}], "needs a name"),
        ([{"name": "a.py", "text": 5}], "must be a string"),
        ({"name": "a.py", "text": "x"}, "must be a list"),
        ([{"name": "a.py", "text": "\ud800"}], "surrogate"),
    ],
)
def test_bad_files_are_refused_with_what_is_wrong_and_nothing_is_stored(
    service: ChatService, files: object, reason: str
) -> None:
    chat_id = service.new_chat()
    with pytest.raises(InvalidInput, match=reason):
        list(service.send(chat_id, "Look at this", SHORT, files=files))
    assert service.history(chat_id) == []


def test_uploaded_bytes_must_be_utf8_text() -> None:
    limits = Limits(5, 1000)
    assert decoded("a.py", "\ufeffx = 'é'\r\n".encode(), limits) == {"name": "a.py", "text": "x = 'é'\n"}
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        decoded("latin.txt", "café".encode("latin-1"), limits)
    with pytest.raises(InvalidInput, match="binary"):
        decoded("lib.so", b"\x7fELF\x02\x01\x01\x00\x00", limits)
    with pytest.raises(InvalidInput, match="at most 1,000 bytes"):
        decoded("big.txt", b"x" * 1001, limits)


def test_files_count_in_trimming_and_are_never_cut_silently(engine, store: ChatStore, redis_server) -> None:
    small = ChatService(engine, store, make_settings(redis_server.url))  # the test engine's window: 2,048 tokens
    chat_id = small.new_chat("explain")
    huge = [{"name": "huge.py", "text": "value = 1\n" * 800}, {"name": "tiny.py", "text": "x = 2\n"}]
    with pytest.raises(InvalidInput, match=r"message and its files are about [\d,]+ tokens.*huge\.py about [\d,]+"):
        small.prepare(chat_id, "Explain", SHORT, files=huge)
    old = [{"name": "old_notes.txt", "text": "note\n" * 500}]
    assert list(small.send(chat_id, "Read my notes.", TurnOptions(max_new_tokens=8, verify=False), files=old))[-1].done
    final = list(small.send(chat_id, "x " * 1000, TurnOptions(max_new_tokens=8, verify=False)))[-1]
    assert final.stats["dropped_messages"] >= 1 and final.stats["dropped_files"] == ["old_notes.txt"]
    assert small.measure("Explain", huge)["tokens"] > small.measure("Explain")["tokens"] + 400


def test_files_appear_in_the_exports_and_as_the_model_reads_them(service: ChatService) -> None:
    chat_id = service.new_chat("explain")
    list(service.send(chat_id, "Explain", SHORT, files=FILES[:1]))
    meta, messages = service.chat(chat_id)
    markdown = export.to_markdown(meta, messages)
    assert "<details><summary>📎 secret.py · 2 lines</summary>" in markdown and "```python\ndef mystery():" in markdown
    assert json.loads(export.to_json(meta, messages))["messages"][0]["files"] == [{"name": "secret.py", "text": CODE}]
    assert with_files("Explain", messages[0]["files"]).endswith("File `secret.py`:\n```python\n" + CODE + "```")


def test_rest_sends_a_question_with_files_and_refuses_bad_ones(live: LiveServer) -> None:
    chat_id = httpx.post(live.url + "api/chats", json={"task": "explain"}).json()["id"]
    body = {"content": "", "files": FILES[:1], "max_tokens": 8}
    answer = httpx.post(f"{live.url}api/chats/{chat_id}/messages", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "assistant" and answer.json()["content"].strip()
    stored = httpx.get(f"{live.url}api/chats/{chat_id}").json()
    assert stored["title"] == "secret.py" and stored["messages"][0]["files"] == [{"name": "secret.py", "text": CODE}]
    binary = {"content": "What is this?", "files": [{"name": "a.bin", "text": "\x00\x01\x02"}]}
    refused = httpx.post(f"{live.url}api/chats/{chat_id}/messages", json=binary, timeout=60)
    assert refused.status_code == 422 and "a.bin looks like a binary file" in refused.json()["detail"]
    empty = httpx.post(f"{live.url}api/chats/{chat_id}/messages", json={"content": " "}, timeout=60)
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    assert len(httpx.get(f"{live.url}api/chats/{chat_id}").json()["messages"]) == 2, "refusals add nothing"


def test_gradio_client_and_v1_send_files(live: LiveServer) -> None:
    client = Client(live.url, verbose=False)
    chat_id = client.predict("explain", "beginner", api_name="/new_chat")
    client.predict(chat_id, "Explain", None, None, 0.0, 8, None, FILES, api_name="/chat")
    history = client.predict(chat_id, api_name="/history")
    assert history[0]["files"][0] == {"name": "secret.py", "text": CODE}
    with pytest.raises(AppError, match="looks like a binary file"):
        client.predict(
            chat_id, "x", None, None, 0.0, 8, None, [{"name": "a.bin", "text": "\x00\x01"}], api_name="/chat"
        )

    body = {"messages": [{"role": "user", "content": "Explain"}], "max_tokens": 8, "chat_id": "new", "files": FILES}
    sent = httpx.post(live.url + "v1/chat/completions", json=body, timeout=120)
    assert sent.status_code == 200, sent.text
    stored = httpx.get(live.url + "api/chats/" + sent.headers["X-ChMOCoder-Chat"]).json()
    assert [f["name"] for f in stored["messages"][0]["files"]] == ["secret.py", "run.log"]
    body = {"messages": [{"role": "user", "content": "Explain"}], "files": [{"name": "x.py", "text": "a" * 300_000}]}
    refused = httpx.post(live.url + "v1/chat/completions", json=body, timeout=60)
    assert refused.status_code == 400 and "at most 200,000 bytes" in refused.json()["error"]["message"]

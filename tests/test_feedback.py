"""Thumbs up or down on an answer: kept with the message in a real Redis, changed or taken back, shown
in the transcript and both exports, counted in /metrics; only answers, only by a browser that has the
chat in its list."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from chmocoder import export
from chmocoder.chat import ChatService, TurnOptions
from chmocoder.errors import Forbidden, InvalidInput, UnknownChat
from chmocoder.library import ChatLibrary
from chmocoder.metrics import FEEDBACK
from chmocoder.store import ChatStore

from .conftest import LiveServer
from .test_programmatic import metric

SHORT = TurnOptions(max_new_tokens=24, verify=False)


def rated(store: ChatStore, chat_id: str) -> list[str | None]:
    return [m.get("feedback") for m in store.messages(chat_id)]


def test_a_rating_is_kept_with_its_answer_changed_taken_back_and_exported(
    service: ChatService, store: ChatStore
) -> None:
    me, guest, stranger = (secrets.token_urlsafe(32) for _ in range(3))
    library = ChatLibrary(store)
    chat_id = service.new_chat("explain", "beginner", owner=me)
    for question in ("What is a list?", "And a tuple?"):
        assert list(service.send(chat_id, question, SHORT))[-1].done
    ups = FEEDBACK.labels("up")._value.get()

    library.rate(chat_id, me, 3, "up")
    assert rated(store, chat_id) == [None, None, None, "up"]
    assert FEEDBACK.labels("up")._value.get() == ups + 1
    library.rate(chat_id, me, 3, "down")  # changed: still one rating on the answer
    library.rate(chat_id, me, 1, "up")
    assert rated(store, chat_id) == [None, "up", None, "down"]
    meta, messages = store.chat(chat_id)
    markdown = export.to_markdown(meta, messages)
    assert markdown.count("*Rated: 👍 helpful*") == 1 and markdown.count("*Rated: 👎 not helpful*") == 1
    assert [m.get("feedback") for m in json.loads(export.to_json(meta, messages))["messages"]] == rated(store, chat_id)

    library.rate(chat_id, me, 3, None)
    assert rated(store, chat_id) == [None, "up", None, None]
    assert all(m["content"] for m in store.messages(chat_id)), "rating leaves the answers' text alone"

    library.open_chat(chat_id, guest)  # a guest who opened it by its id may rate too
    library.rate(chat_id, guest, 3, "up")
    with pytest.raises(Forbidden, match="in your list"):
        library.rate(chat_id, stranger, 3, "down")
    for index, rating, why in [(0, "up", "only an answer"), (9, "up", "no message 9"), (3, "love", '"up", "down"')]:
        with pytest.raises(InvalidInput, match=why):
            library.rate(chat_id, me, index, rating)
    assert rated(store, chat_id) == [None, "up", None, "up"], "a refused rating changes nothing"
    library.delete(chat_id, me)
    with pytest.raises(UnknownChat):
        library.rate(chat_id, guest, 3, "down")


def test_api_clients_rate_over_rest_and_gradio_client(live: LiveServer) -> None:
    me = secrets.token_urlsafe(32)
    client = Client(live.url, verbose=False)
    chat_id = client.predict("explain", "expert", me, api_name="/new_chat")
    assert client.submit(chat_id, "What is a dict?", None, None, None, 24, None, api_name="/chat").result()
    downs = metric(live, 'chmocoder_feedback_total{rating="down"}')

    url, owner = f"{live.url}api/chats/{chat_id}", {"X-ChMOCoder-Owner": me}
    assert httpx.put(f"{url}/messages/1/feedback", json={"rating": "down"}, headers=owner).status_code == 204
    assert httpx.get(url).json()["messages"][1]["feedback"] == "down"
    assert metric(live, 'chmocoder_feedback_total{rating="down"}') == downs + 1
    refused = httpx.put(f"{url}/messages/0/feedback", json={"rating": "up"}, headers=owner)
    assert refused.status_code == 422 and "only an answer" in refused.text
    assert httpx.put(f"{url}/messages/1/feedback", json={"rating": "up"}).status_code == 422, "an owner is needed"

    assert client.predict(chat_id, me, 1, "up", api_name="/rate_answer") is True
    assert client.predict(chat_id, api_name="/history")[1]["feedback"] == "up"
    assert client.predict(chat_id, me, 1, "", api_name="/rate_answer") is True
    assert "feedback" not in client.predict(chat_id, api_name="/history")[1]
    with pytest.raises(AppError, match="in your list"):
        client.predict(chat_id, secrets.token_urlsafe(32), 1, "up", api_name="/rate_answer")
    markdown = httpx.get(f"{url}/export?format=markdown")
    assert markdown.status_code == 200 and "Rated" not in markdown.text

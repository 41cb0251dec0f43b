"""Standing instructions: kept per owner in a real Redis, read into every new answer's prompt after the
task and level rules, and the same for API clients, with clear refusals."""

from __future__ import annotations

import secrets

import httpx
import pytest
import redis
from gradio_client import Client
from gradio_client.exceptions import AppError

from chmocoder.chat import MAX_INSTRUCTIONS_CHARS, ChatService, TurnOptions
from chmocoder.errors import InvalidInput
from chmocoder.library import ChatLibrary
from chmocoder.prompts import LEVEL_RULES, STANDING, TASK_RULES
from chmocoder.store import ChatStore, owner_key

from .conftest import LiveServer

WANTED = "Python 3.12, type hints, pytest."


def test_a_browsers_instructions_follow_the_task_and_level_rules_in_every_new_answer(
    service: ChatService, store: ChatStore
) -> None:
    me, someone = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    library = ChatLibrary(store)
    assert library.set_instructions(me, f"  {WANTED}\n") == WANTED
    chat_id = service.new_chat("debug", "beginner", owner=me)
    system = service.prepare(chat_id, "Why is 0.1 + 0.2 != 0.3?", TurnOptions(owner=me)).system
    assert system.index(TASK_RULES["debug"]) < system.index(LEVEL_RULES["beginner"]) < system.index(STANDING)
    assert system.endswith(f"{STANDING}\n{WANTED}")
    # A guest continuing the chat asks with their own (none): instructions belong to who asks.
    assert STANDING not in service.prepare(chat_id, "And 0.5?", TurnOptions(owner=someone)).system
    final = list(service.send(chat_id, "Why is 0.1 + 0.2 != 0.3?", TurnOptions(owner=me, verify=False)))[-1]
    assert final.done and final.text
    library.set_instructions(me, "")
    assert (
        library.instructions(me) == "" and STANDING not in service.prepare(chat_id, "x", TurnOptions(owner=me)).system
    )


def test_instructions_live_as_long_as_chats_and_bad_ones_are_refused(
    store: ChatStore, redis_client: redis.Redis
) -> None:
    me = secrets.token_urlsafe(32)
    library = ChatLibrary(store)
    library.set_instructions(me, WANTED)
    assert 0 < redis_client.ttl(owner_key(me) + ":instructions") <= store.ttl
    for bad, why in [("x" * (MAX_INSTRUCTIONS_CHARS + 1), "at most 2,000 characters"), ("a\x00b", "plain text")]:
        with pytest.raises(InvalidInput, match=why):
            library.set_instructions(me, bad)
    assert library.instructions(me) == WANTED, "a refused edit keeps what was there"
    with pytest.raises(InvalidInput, match="owner token"):
        library.set_instructions("short", WANTED)


def test_api_clients_keep_instructions_over_rest_and_give_them_with_a_turn(live: LiveServer) -> None:
    api, me = live.url + "api", {"X-ChMOCoder-Owner": secrets.token_urlsafe(32)}
    assert httpx.get(f"{api}/instructions", headers=me).json() == {"text": ""}
    assert httpx.put(f"{api}/instructions", json={"text": WANTED}, headers=me).json() == {"text": WANTED}
    assert httpx.get(f"{api}/instructions", headers=me).json() == {"text": WANTED}
    too_long = httpx.put(f"{api}/instructions", json={"text": "x" * 2001}, headers=me)
    assert too_long.status_code == 422 and "2000" in too_long.text
    assert httpx.delete(f"{api}/instructions", headers=me).status_code == 204
    assert httpx.get(f"{api}/instructions", headers=me).json() == {"text": ""}
    assert httpx.get(f"{api}/instructions").status_code == 422, "an owner token is required"

    client = Client(live.url, verbose=False)
    chat_id = client.predict("write", "expert", api_name="/new_chat")
    answer = client.submit(chat_id, "Say hi.", None, None, None, None, WANTED, api_name="/chat").result()
    assert answer
    with pytest.raises(AppError, match="at most 2,000 characters"):
        client.submit(chat_id, "Say hi.", None, None, None, None, "x" * 2001, api_name="/chat").result()

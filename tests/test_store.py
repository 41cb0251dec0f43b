"""Transcripts in a real Redis: atomic appends, TTLs on every key, ids nobody can guess."""

from __future__ import annotations

import base64
import threading

import pytest
import redis

from chmocoder.store import ChatNotFound, ChatStore


def test_ids_are_unguessable(store: ChatStore) -> None:
    ids = {store.create("write", "beginner") for _ in range(200)}
    assert len(ids) == 200
    for chat_id in ids:
        assert len(base64.urlsafe_b64decode(chat_id)) * 8 >= 128


def test_every_key_has_a_ttl_that_writes_renew(redis_client: redis.Redis, store: ChatStore) -> None:
    short = ChatStore(store.client, ttl_seconds=100)
    chat_id = short.create("debug", "expert")
    short.append(chat_id, {"role": "user", "content": "hi"})
    meta_key, messages_key = ChatStore.keys(chat_id)
    for key in (meta_key, messages_key):
        redis_client.expire(key, 5)
    short.append(chat_id, {"role": "assistant", "content": "hello"})
    for key in (meta_key, messages_key):
        assert 90 < redis_client.ttl(key) <= 100


def test_expired_chat_is_not_resurrected(redis_client: redis.Redis, store: ChatStore) -> None:
    chat_id = store.create("write", "beginner")
    store.append(chat_id, {"role": "user", "content": "hi"})
    redis_client.delete(*ChatStore.keys(chat_id))
    with pytest.raises(ChatNotFound):
        store.append(chat_id, {"role": "assistant", "content": "late answer"})
    assert redis_client.exists(*ChatStore.keys(chat_id)) == 0
    with pytest.raises(ChatNotFound):
        store.messages(chat_id)


def test_concurrent_appends_lose_nothing(store: ChatStore) -> None:
    chat_id = store.create("write", "beginner")

    def writer(n: int) -> None:
        for i in range(50):
            store.append(chat_id, {"role": "user", "content": f"{n}-{i}"})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = [m["content"] for m in store.messages(chat_id)]
    assert sorted(contents) == sorted(f"{n}-{i}" for n in range(4) for i in range(50))
    for n in range(4):
        mine = [c for c in contents if c.startswith(f"{n}-")]
        assert mine == [f"{n}-{i}" for i in range(50)], "each writer's messages keep their order"


def test_title_comes_from_the_first_message(store: ChatStore) -> None:
    chat_id = store.create("write", "beginner")
    store.append(chat_id, {"role": "user", "content": "first"}, title="first question")
    store.append(chat_id, {"role": "user", "content": "second"}, title="second question")
    assert store.meta(chat_id)["title"] == "first question"


def test_text_round_trips_exactly(store: ChatStore) -> None:
    chat_id = store.create("write", "beginner")
    text = "def f():\n    if x:\n\t\treturn 'ünïcödé ✓ 🚀'\n\n  \n"
    store.append(chat_id, {"role": "user", "content": text})
    assert store.messages(chat_id)[0]["content"] == text

"""Expiry a user can see and choose, in a real Redis: a chat kept longer stays kept through later
messages, only its creator may choose, and its list, instructions and share link outlive it never."""

from __future__ import annotations

import secrets
import time

import pytest
import redis

from chmocoder.errors import Forbidden, InvalidInput, UnknownChat
from chmocoder.library import ChatLibrary, duration
from chmocoder.store import ChatStore, owner_key


@pytest.fixture()
def short(store: ChatStore) -> ChatStore:
    """Chats kept 100 s after their last message by default, up to 1,000 s if their creator asks."""
    return ChatStore(store.client, ttl_seconds=100, max_ttl_seconds=1000)


def test_a_kept_chat_stays_kept_through_later_messages(short: ChatStore, redis_client: redis.Redis) -> None:
    me = secrets.token_urlsafe(32)
    library = ChatLibrary(short)
    chat_id = short.create("write", "beginner", me, "Kept")
    short.append(chat_id, {"role": "user", "content": "hi"})
    (row,) = library.list_chats(me)
    assert row["keep_s"] == 100 and 95 <= row["expires_at"] - time.time() <= 101
    assert library.keep_choices() == [100, 1000]
    library.keep(chat_id, me, 1000)
    short.append(chat_id, {"role": "assistant", "content": "hello"})  # before: every write reset it to 100 s
    meta_key, messages_key = ChatStore.keys(chat_id)
    assert all(990 < redis_client.ttl(key) <= 1000 for key in (meta_key, messages_key))
    (row,) = library.list_chats(me)
    assert row["keep_s"] == 1000 and row["expires_at"] - time.time() > 990
    assert redis_client.ttl(owner_key(me)) > 990, "the list of chats lives as long as its longest-kept chat"
    library.keep(chat_id, me, 100)
    assert redis_client.ttl(meta_key) <= 100, "back to the default, from now"


def test_only_the_creator_chooses_and_only_within_the_limits(short: ChatStore) -> None:
    me, guest = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    library = ChatLibrary(short)
    chat_id = short.create("write", "beginner", me)
    library.open_chat(chat_id, guest)
    with pytest.raises(Forbidden, match="only the person who started this chat"):
        library.keep(chat_id, guest, 1000)
    for seconds in (99, 1001):
        with pytest.raises(InvalidInput, match="can be kept 2 minutes to 17 minutes after its last use"):
            library.keep(chat_id, me, seconds)
    library.delete(chat_id, me)
    with pytest.raises(UnknownChat):
        library.keep(chat_id, me, 1000)


def test_a_share_link_says_so_once_its_chat_is_deleted(short: ChatStore) -> None:
    me = secrets.token_urlsafe(32)
    library = ChatLibrary(short)
    chat_id = short.create("write", "beginner", me, "Shared")
    short.append(chat_id, {"role": "user", "content": "hi"})
    token = library.share(chat_id, me)
    assert library.shared(token)[0]["title"] == "Shared"
    library.delete(chat_id, me)
    with pytest.raises(UnknownChat, match="was deleted or has expired"):
        library.shared(token)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(45, "1 minute"), (3599, "1 hour"), (23 * 3600, "23 hours"), (86399, "1 day"), (7 * 86400, "7 days")],
)
def test_durations_read_as_people_say_them(seconds: int, said: str) -> None:
    assert duration(seconds) == said

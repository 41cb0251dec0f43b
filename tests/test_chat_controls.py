"""Regenerate, Edit, Undo, the per-browser chat list, sharing and export: the stored transcript is the truth."""

from __future__ import annotations

import json
import secrets

import pytest

from chmocoder import export
from chmocoder.chat import ChatService, TurnOptions
from chmocoder.errors import Forbidden, InvalidInput, UnknownChat
from chmocoder.library import ChatLibrary


def owner() -> str:
    return secrets.token_urlsafe(32)


def ask(service: ChatService, chat_id: str, text: str) -> str:
    return list(service.send(chat_id, text))[-1].text


def test_regenerate_replaces_only_the_last_answer(service: ChatService) -> None:
    chat = service.new_chat()
    ask(service, chat, "What is a list?")
    ask(service, chat, "What is a dict?")
    before = service.history(chat)
    again = list(service.regenerate(chat, TurnOptions(level="expert")))[-1].text
    after = service.history(chat)
    same = [(m["role"], m["content"]) for m in after[:3]]
    assert len(after) == 4 and same == [(m["role"], m["content"]) for m in before[:3]]
    assert after[:2] == before[:2], "earlier turns are not rewritten"
    assert after[3]["content"] == again and after[3]["level"] == "expert"


def test_edit_replaces_a_message_and_drops_what_followed(service: ChatService) -> None:
    chat = service.new_chat()
    ask(service, chat, "What is a list?")
    ask(service, chat, "What is a dict?")
    answer = list(service.edit(chat, 0, "What is a set?"))[-1].text
    assert [(m["role"], m["content"]) for m in service.history(chat)] == [
        ("user", "What is a set?"),
        ("assistant", answer),
    ]


def test_editing_the_first_question_retitles_unless_renamed(service: ChatService, library: ChatLibrary) -> None:
    me = owner()
    auto, named = service.new_chat(owner=me), service.new_chat(owner=me)
    for chat in (auto, named):
        ask(service, chat, "What is a list?")
    library.rename(named, me, "My notes")
    for chat in (auto, named):
        list(service.edit(chat, 0, "What is a set?"))
    assert service.info(auto)["title"] == "What is a set?"
    assert service.info(named)["title"] == "My notes"


def test_edit_refuses_stale_or_bad_input_and_keeps_the_chat(service: ChatService) -> None:
    chat = service.new_chat()
    ask(service, chat, "What is a list?")
    before = service.history(chat)
    for index in (1, 2, -1, 99):
        with pytest.raises(InvalidInput, match="no longer in the chat"):
            list(service.edit(chat, index, "new text"))
    with pytest.raises(InvalidInput, match="empty"):
        list(service.edit(chat, 0, "   "))
    assert service.history(chat) == before


def test_undo_removes_the_last_exchange_and_returns_the_question(service: ChatService) -> None:
    chat = service.new_chat()
    ask(service, chat, "First?")
    ask(service, chat, "Second?")
    assert service.undo(chat) == "Second?"
    assert [m["content"] for m in service.history(chat) if m["role"] == "user"] == ["First?"]
    assert service.undo(chat) == "First?"
    assert service.history(chat) == []
    with pytest.raises(InvalidInput, match="no question"):
        service.undo(chat)


def test_a_chat_opened_by_its_id_is_a_guests_who_can_only_remove_it_from_their_list(
    service: ChatService, library: ChatLibrary
) -> None:
    """Anyone holding a chat id could open it, which put it in their list, and then rename or delete it."""
    alice, mallory = owner(), owner()
    chat = service.new_chat(owner=alice)
    ask(service, chat, "Alice's question")
    library.open_chat(chat, mallory)
    assert [(c["id"], c["guest"]) for c in library.list_chats(mallory)] == [(chat, True)]
    assert [(c["id"], c["guest"]) for c in library.list_chats(alice)] == [(chat, False)]
    for action, doing in (
        (lambda: library.rename(chat, mallory, "mine now"), "rename it"),
        (lambda: library.share(chat, mallory), "share it"),
        (lambda: library.delete(chat, mallory), "delete it; you can remove it from your list"),
    ):
        with pytest.raises(Forbidden, match=f"only the person who started this chat can {doing}"):
            action()
    ask(service, chat, "Mallory continues it")  # the id is the key to reading and continuing
    library.remove_from_list(chat, mallory)
    assert library.list_chats(mallory) == [] and service.info(chat)["title"] == "Alice's question"
    library.rename(chat, alice, "Renamed by Alice")
    library.delete(chat, alice)


def test_each_browser_sees_only_its_own_chats(service: ChatService, library: ChatLibrary) -> None:
    alice, bob = owner(), owner()
    first = service.new_chat(owner=alice)
    ask(service, first, "Alice's first question")
    second = service.new_chat(owner=alice)
    ask(service, second, "Alice's second question")
    assert [c["id"] for c in library.list_chats(alice)] == [second, first], "newest first"
    assert [c["title"] for c in library.list_chats(alice)] == ["Alice's second question", "Alice's first question"]
    assert library.list_chats(bob) == []
    for action in (
        lambda: library.rename(first, bob, "mine now"),
        lambda: library.delete(first, bob),
        lambda: library.share(first, bob),
    ):
        with pytest.raises(Forbidden):
            action()
    assert service.info(first)["title"] == "Alice's first question"


def test_rename_delete_and_expiry_update_the_list(service: ChatService, library: ChatLibrary, redis_client) -> None:
    me = owner()
    keep, drop, expire = (service.new_chat(owner=me) for _ in range(3))
    assert library.rename(keep, me, "  Sorting \n notes ") == "Sorting notes"
    library.delete(drop, me)
    with pytest.raises(UnknownChat):
        service.history(drop)
    redis_client.delete(*service.store.keys(expire))
    assert [c["id"] for c in library.list_chats(me)] == [keep]
    assert library.list_chats(me)[0]["title"] == "Sorting notes"
    with pytest.raises(InvalidInput):
        library.rename(keep, me, "\x00\x01")


def test_opening_a_chat_by_id_adds_it_to_the_list(service: ChatService, library: ChatLibrary) -> None:
    chat = service.new_chat()
    me = owner()
    library.open_chat(chat, me)
    assert [c["id"] for c in library.list_chats(me)] == [chat]
    with pytest.raises(InvalidInput, match="owner token"):
        library.list_chats("short")


def test_share_token_reads_without_revealing_the_chat(service: ChatService, library: ChatLibrary) -> None:
    me = owner()
    chat = service.new_chat(owner=me)
    ask(service, chat, "Share this")
    token = library.share(chat, me)
    assert library.share(chat, me) == token, "one link per chat"
    meta, messages = library.shared(token)
    assert chat not in json.dumps(meta) and messages == service.history(chat)
    with pytest.raises(UnknownChat):
        library.shared("A" * 32)
    library.delete(chat, me)
    with pytest.raises(UnknownChat):
        library.shared(token)


def test_share_link_expires_with_the_chat(service: ChatService, library: ChatLibrary, redis_client) -> None:
    me = owner()
    chat = service.new_chat(owner=me)
    token = library.share(chat, me)
    redis_client.expire(f"chmocoder:share:{token}", 100)  # as if the link were nearly a day old
    ask(service, chat, "renew")
    assert 86_000 < redis_client.ttl(f"chmocoder:share:{token}") <= 86_400, "a new message renews the link"


def test_exports(service: ChatService) -> None:
    chat = service.new_chat("debug", "beginner")
    text = "Fix:\n```python\nfor i in range(3):\n    print(i)\n```"
    answer = ask(service, chat, text)
    meta, messages = service.info(chat), service.history(chat)
    markdown = export.to_markdown(meta, messages)
    assert markdown.startswith("# Fix:") and "*Debug and fix · Beginner ·" in markdown
    assert f"## You\n\n{text}\n" in markdown and f"## ChMOCoder\n\n{answer}" in markdown
    document = json.loads(export.to_json(meta, messages))
    assert document["task"] == "debug" and document["messages"][0]["content"] == text
    assert export.filename(meta, "markdown") == "chmocoder-fix.md", "named after the title: its plain text"

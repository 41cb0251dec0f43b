"""Finding one's chats by their words, in a real Redis: every word, any case, the matching line shown,
and nobody else's chats."""

from __future__ import annotations

import secrets

import pytest

from chmocoder.chat_search import MAX_HITS, excerpt
from chmocoder.errors import InvalidInput
from chmocoder.library import ChatLibrary
from chmocoder.store import ChatStore


def chat(store: ChatStore, owner: str, title: str, *messages: tuple[str, str]) -> str:
    chat_id = store.create("write", "beginner", owner, title)
    for role, content in messages:
        store.append(chat_id, {"role": role, "content": content})
    return chat_id


@pytest.fixture()
def library(store: ChatStore) -> ChatLibrary:
    return ChatLibrary(store)


def test_a_search_finds_chats_holding_every_word_and_shows_the_matching_line(
    store: ChatStore, library: ChatLibrary
) -> None:
    me, someone = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sort = chat(store, me, "Sorting dicts", ("user", "How do I sort a list of dicts?"),
                ("assistant", "Use sorted():\n```python\nrows.sort(key=lambda r: r['Age'])\n```"))  # fmt: skip
    chat(store, me, "Recursion", ("user", "What is recursion?"), ("assistant", "A function calling itself."))
    chat(store, someone, "Their sorting", ("user", "sort my rows by age"))
    hits = library.search(me, "AGE   sort")
    assert [h.chat_id for h in hits] == [sort], "both words, any case, only this browser's chats"
    assert hits[0].role == "assistant" and hits[0].line == "rows.sort(key=lambda r: r['Age'])"
    assert [h.role for h in library.search(me, "sorting")] == ["title"]
    assert library.search(me, "sort recursion") == [], "every word must be in the same chat"
    assert library.search(me, "   ") == []


def test_quotes_backslashes_and_other_alphabets_are_found_as_written(store: ChatStore, library: ChatLibrary) -> None:
    """Chats are first looked for in their stored JSON, which escapes these."""
    me = secrets.token_urlsafe(32)
    found = chat(store, me, "Пути", ("user", 'Why is open("C:\\temp\\новый.txt") failing?'))
    assert [h.chat_id for h in library.search(me, '("C:\\temp\\новый.txt")')] == [found]
    assert [h.chat_id for h in library.search(me, "НОВЫЙ")] == [found]
    legacy = store.create("write", "beginner", me, "Old")
    store.client.rpush(
        ChatStore.keys(legacy)[1], '{"role": "user", "content": "\\u0437\\u0430\\u043f\\u0440\\u043e\\u0441"}'
    )
    assert [h.chat_id for h in library.search(me, "запрос")] == [legacy], "older chats stored \\u escapes"


def test_a_deleted_chat_is_not_found_and_a_long_query_is_refused(store: ChatStore, library: ChatLibrary) -> None:
    me = secrets.token_urlsafe(32)
    gone = chat(store, me, "Old", ("user", "a unique zebra question"))
    library.delete(gone, me)
    assert library.search(me, "zebra") == []
    with pytest.raises(InvalidInput, match="at most 200 characters"):
        library.search(me, "x" * 201)


def test_many_hits_stop_at_the_limit_newest_first(store: ChatStore, library: ChatLibrary) -> None:
    me = secrets.token_urlsafe(32)
    ids = [chat(store, me, f"Chat {n}", ("user", f"question {n} about pandas")) for n in range(MAX_HITS + 5)]
    hits = library.search(me, "pandas")
    assert len(hits) == MAX_HITS and hits[0].chat_id == ids[-1]


def test_a_long_line_is_cut_around_its_match() -> None:
    line = "word " * 40 + "needle" + " tail" * 40
    cut = excerpt(line, "needle", width=60)
    assert "needle" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) <= 62

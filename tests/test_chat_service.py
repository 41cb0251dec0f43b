"""One turn through the chat service, on the real test model and a real Redis."""

from __future__ import annotations

import threading
from contextlib import closing

import pytest

from chmocoder.chat import ChatService, TurnOptions
from chmocoder.engine import GenerationParams, GenerationStats
from chmocoder.errors import InvalidInput, Unavailable, UnknownChat
from chmocoder.prompts import LEVEL_RULES, TASK_RULES, system_prompt
from chmocoder.store import ChatStore

from .conftest import make_settings

QUESTION = "Write a Python function that returns the sum of a list of numbers."


def test_answer_streams_in_pieces_and_is_saved(service: ChatService) -> None:
    chat_id = service.new_chat("write", "beginner")
    replies = list(service.send(chat_id, QUESTION))
    assert len(replies) > 5, "the answer should arrive in many pieces, not all at once"
    assert all(replies[i + 1].text.startswith(replies[i].text) for i in range(len(replies) - 2))
    final = replies[-1]
    assert final.done and final.text.strip()
    assert final.stats["completion_tokens"] > 5 and final.stats["tokens_per_s"] > 0
    assert [m["role"] for m in service.history(chat_id)] == ["user", "assistant"]
    assert service.history(chat_id)[1]["content"] == final.text


def test_same_question_same_answer_at_temperature_zero(service: ChatService) -> None:
    answers = [list(service.send(service.new_chat(), QUESTION))[-1].text for _ in range(2)]
    assert answers[0] == answers[1]


def test_follow_up_sees_the_history(service: ChatService) -> None:
    chat_id = service.new_chat()
    list(service.send(chat_id, "My favourite number is 42. Remember it."))
    list(service.send(chat_id, "What did I say my favourite number is?"))
    history = service.history(chat_id)
    assert len(history) == 4
    assert "42" in history[-1]["content"]


def test_stopping_keeps_the_partial_answer_and_frees_the_model(engine, service: ChatService) -> None:
    chat_id = service.new_chat()
    replies = service.send(chat_id, QUESTION, TurnOptions(max_new_tokens=400))
    with closing(replies):
        for n, reply in enumerate(replies):
            if n == 3:
                partial = reply.text
                break
    stored = service.history(chat_id)[-1]
    assert stored["stopped"] is True
    assert stored["content"] == partial and partial
    shown = engine.count_tokens(partial)
    assert stored["stats"]["completion_tokens"] <= shown + 2, "generation must stop at the next token"
    # The model is free: another turn starts at once instead of waiting for the stopped one.
    done = threading.Event()
    threading.Thread(target=lambda: (list(service.send(service.new_chat(), "Say hi.")), done.set())).start()
    assert done.wait(60)


def test_system_prompt_follows_task_and_level(engine, service: ChatService) -> None:
    debug = system_prompt("debug", "beginner")
    assert TASK_RULES["debug"] in debug and LEVEL_RULES["beginner"] in debug
    assert system_prompt("write", "expert") != debug
    text = engine.text(engine.prompt_tokens([{"role": "system", "content": debug}, {"role": "user", "content": "x"}]))
    assert TASK_RULES["debug"] in text and LEVEL_RULES["beginner"] in text, "the model reads the rules verbatim"
    chat_id = service.new_chat("write", "expert")
    list(service.send(chat_id, "Fix: print(1/0)", TurnOptions(task="debug", level="beginner")))
    assert (service.info(chat_id)["task"], service.info(chat_id)["level"]) == ("debug", "beginner")
    assert service.history(chat_id)[-1]["task"] == "debug"


def test_long_chat_is_trimmed_and_still_answered(engine, store: ChatStore, redis_server) -> None:
    small = ChatService(engine, store, make_settings(redis_server.url, n_ctx=2048, max_new_tokens=32))
    chat_id = small.new_chat()
    filler = "Here is some earlier context about my project. " * 40
    for i in range(12):
        store.append(chat_id, {"role": "user", "content": f"{i}: {filler}"})
        store.append(chat_id, {"role": "assistant", "content": f"Noted {i}."})
    final = list(small.send(chat_id, "What is 2 + 2?"))[-1]
    assert final.done and final.text
    assert final.stats["dropped_messages"] > 0
    assert final.stats["prompt_tokens"] + 32 <= 2048
    assert len(small.history(chat_id)) == 26, "trimming affects the prompt only, never the stored chat"


def test_message_too_large_for_the_window_is_refused(engine, store: ChatStore, redis_server) -> None:
    small = ChatService(engine, store, make_settings(redis_server.url, n_ctx=512, max_message_chars=50_000))
    chat_id = small.new_chat()
    with pytest.raises(InvalidInput, match="tokens"):
        list(small.send(chat_id, "word " * 3000))
    assert small.history(chat_id) == []


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 200_000, "200,000 characters"),
        ("PK\x03\x04\x00\x00binary\x00\x01\x02", "binary"),
        (b"\x00\x01bytes", "must be text"),
    ],
)
def test_bad_messages_are_refused_and_the_chat_is_intact(service: ChatService, message: object, reason: str) -> None:
    chat_id = service.new_chat()
    list(service.send(chat_id, "Say hi."))
    before = service.history(chat_id)
    with pytest.raises(InvalidInput, match=reason):
        list(service.send(chat_id, message))
    assert service.history(chat_id) == before


@pytest.mark.parametrize("chat_id", ["", "nope", "A" * 32, "../../etc/passwd", "x" * 10_000])
def test_unknown_or_forged_chat_ids_are_refused(service: ChatService, chat_id: str) -> None:
    with pytest.raises(UnknownChat, match="unknown chat id"):
        list(service.send(chat_id, "hello"))
    with pytest.raises(UnknownChat):
        service.history(chat_id)


def test_bad_settings_values_are_refused(service: ChatService) -> None:
    chat_id = service.new_chat()
    with pytest.raises(InvalidInput, match="temperature"):
        list(service.send(chat_id, "hi", TurnOptions(temperature=5)))
    with pytest.raises(InvalidInput, match="max new tokens"):
        list(service.send(chat_id, "hi", TurnOptions(max_new_tokens=10**9)))
    with pytest.raises(InvalidInput, match="unknown task"):
        list(service.send(chat_id, "hi", TurnOptions(task="hack")))
    assert service.history(chat_id) == []


def test_redis_down_gives_a_clear_error(engine, settings) -> None:
    dead = ChatStore.from_url("redis://127.0.0.1:1/0", 60)
    broken = ChatService(engine, dead, settings)
    with pytest.raises(Unavailable, match="unreachable"):
        broken.new_chat()
    with pytest.raises(Unavailable, match="unreachable"):
        list(broken.send("A" * 32, "hello"))


def test_engine_streams_token_by_token(engine) -> None:
    prompt = engine.prompt_tokens([{"role": "user", "content": QUESTION}])
    stats = GenerationStats()
    batches = engine.stream(prompt, GenerationParams(max_tokens=30, temperature=0.0, top_p=1.0), stats)
    pieces = [piece for batch in batches for piece in batch]
    assert len(pieces) >= 20
    assert stats.completion_tokens == 30 and stats.finish_reason == "length"


def test_engine_says_when_it_is_busy_even_when_stopped(engine, service: ChatService) -> None:
    """The web server polls its queue slowly only while the model works: a stopped turn must say it is idle,
    or every later request would start up to 20 ms late."""
    seen: list[bool] = []
    engine.on_busy = seen.append
    try:
        with closing(service.send(service.new_chat(), QUESTION, TurnOptions(max_new_tokens=400))) as replies:
            next(replies)
            assert seen == [True]
        assert seen == [True, False]
        list(service.send(service.new_chat(), "Say hi."))
        assert seen == [True, False, True, False]
    finally:
        engine.on_busy = lambda busy: None


def test_auto_answers_each_message_with_the_task_it_asks_for(service: ChatService) -> None:
    chat_id = service.new_chat("auto", "beginner")
    crash = "Why does this crash?\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```"
    first = list(service.send(chat_id, crash, TurnOptions(verify=False)))[-1]
    second = list(service.send(chat_id, "What is a list comprehension?"))[-1]
    assert (first.stats.get("picked_task"), second.stats.get("picked_task")) == ("debug", "explain"), first.stats
    stored = service.history(chat_id)
    assert [m.get("task") for m in stored if m["role"] == "assistant"] == ["debug", "explain"]
    assert service.info(chat_id)["task"] == "auto", "the chat keeps picking per message"
    chosen = list(service.send(service.new_chat("write"), crash, TurnOptions(verify=False)))[-1]
    assert "picked_task" not in chosen.stats, "a task the user chose is not second-guessed"

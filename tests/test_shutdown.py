"""Stopping the app (a rolling update, Ctrl-C) loses no answer: one under way is given the grace period
to finish, one that cannot finish is saved as stopped with what was written, and the preStop signal
turns /readyz to 503 while everything else keeps working."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from gradio_client import Client
from gradio_client.client import Job

from chmocoder.chat import ChatService, TurnOptions
from chmocoder.local_engine import LocalEngine
from chmocoder.model_files import resolve_model
from chmocoder.redis_server import EmbeddedRedis, free_port
from chmocoder.settings import Settings
from chmocoder.store import ChatStore

from .conftest import LiveServer

ESSAY = "Write a long essay about the history of Python."
LONG = {"n_ctx": "8192", "max_new_tokens_limit": "4000"}


def start_answer(server: LiveServer, tokens: int, min_chars: int = 1) -> tuple[str, Job]:
    """Ask for an essay and wait until at least `min_chars` of it have reached the client."""
    client = Client(server.url, verbose=False)
    chat_id = client.predict("write", "intermediate", api_name="/new_chat")
    job = client.submit(chat_id, ESSAY, None, None, None, tokens, api_name="/chat")
    deadline = time.monotonic() + 60
    while not (job.outputs() and len(job.outputs()[-1]) >= min_chars) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.outputs(), "the answer should have started streaming"
    return chat_id, job


def exit_after_sigterm(server: LiveServer) -> float:
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)
    server.process = None
    return time.monotonic() - started


def test_sigterm_mid_answer_saves_it_as_stopped_and_exits_after_the_grace_period(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Before: the process exited in 3 s and the answer being written was gone from the chat."""
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    try:
        server = start_server(redis.url, shutdown_grace_s="1", **LONG)
        chat_id, job = start_answer(server, 4000, min_chars=100)
        seen = job.outputs()[-1]
        took = exit_after_sigterm(server)
        assert took < 15, f"the stop took {took:.1f} s"
        messages = ChatStore.from_url(redis.url, 3600).messages(chat_id)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[-1].get("stopped") is True and messages[-1]["content"].startswith(seen)
        assert "stopped: the server is shutting down" in server.log_path.read_text()
    finally:
        redis.stop()


def test_sigterm_lets_an_answer_finish_within_the_grace_period(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    try:
        server = start_server(redis.url, shutdown_grace_s="60", **LONG)
        chat_id, job = start_answer(server, 800)  # several seconds: longer than uvicorn's own 3 s wait
        took = exit_after_sigterm(server)
        assert took < 40, "the stop ends when the answer is saved, not at the end of the grace period"
        messages = ChatStore.from_url(redis.url, 3600).messages(chat_id)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert "stopped" not in messages[-1], "the answer was finished, not cut"
        assert messages[-1]["stats"]["completion_tokens"] == 800
        assert job.outputs()[-1] == messages[-1]["content"], "the user saw the whole answer"
    finally:
        redis.stop()


def test_the_prestop_signal_turns_readyz_to_503_and_the_app_keeps_serving(
    start_server: Callable[..., LiveServer], redis_server: EmbeddedRedis
) -> None:
    server = start_server(redis_server.url)
    assert httpx.get(server.url + "readyz").status_code == 200
    assert server.process is not None
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while httpx.get(server.url + "readyz").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = httpx.get(server.url + "readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert httpx.get(server.url + "healthz").status_code == 200, "not ready is not dead: no restart"
    client = Client(server.url, verbose=False)
    chat_id = client.predict("write", "intermediate", api_name="/new_chat")
    assert client.predict(chat_id, "Say hello.", api_name="/chat"), "requests already routed here are served"


def test_a_turn_whose_reader_is_gone_is_saved_by_the_shutdown(store: ChatStore, settings: Settings) -> None:
    """A stream nobody resumes (its client left) never reaches its own save; the shutdown saves it,
    and refuses new turns meanwhile. (Its own engine: a shutdown halts the model for good.)"""
    path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    engine = LocalEngine(path, n_ctx=settings.n_ctx, n_threads=settings.threads)
    service = ChatService(engine, store, settings)
    chat_id = service.new_chat("write", "intermediate")
    replies = service.send(chat_id, ESSAY, TurnOptions(max_new_tokens=48))
    first = next(r for r in replies if r.text)
    stopper = threading.Thread(target=service.shut_down, args=(0.0, 1.0))
    stopper.start()
    stopper.join(timeout=30)
    stored = store.messages(chat_id)[-1]
    assert stored["role"] == "assistant" and stored.get("stopped") is True
    assert stored["content"].startswith(first.text)
    try:
        next(iter(service.send(chat_id, "Another question")))
        raise AssertionError("a turn was started during the shutdown")
    except Exception as exc:  # noqa: BLE001 - the user's message is what matters
        assert "the server is restarting" in str(exc)
    replies.close()
    engine.close()
    assert len(store.messages(chat_id)) == 2, "the stream's own end does not save it twice"


def test_a_question_left_unanswered_by_a_crash_is_offered_again_never_stacked(
    engine: LocalEngine, store: ChatStore, settings: Settings
) -> None:
    """After SIGKILL the chat ended with a question and no answer; the next message was stored right
    after it, and the model was sent two questions in a row."""
    service = ChatService(engine, store, settings)
    chat_id = service.new_chat("write", "intermediate")
    store.append(chat_id, {"role": "user", "content": "What is a tuple?"})  # then the replica died
    shown = service.history(chat_id)
    assert shown[-1] == {"role": "assistant", "content": "", "interrupted": True}, "offered for resending"

    store.mark_answering(chat_id, 30)  # another replica is answering it right now: not interrupted
    assert service.history(chat_id)[-1]["role"] == "user"
    try:
        service.send(chat_id, "And a list?")
        raise AssertionError("a second question was stacked on one being answered")
    except Exception as exc:  # noqa: BLE001 - the user's message is what matters
        assert "still answering its last question" in str(exc)
    store.done_answering(chat_id)

    turn = service.prepare(chat_id, "And a list?")
    assert turn.interrupted and "What is a tuple?" not in engine.text(turn.prompt)
    list(service.send(chat_id, "And a list?"))
    stored = store.messages(chat_id)
    assert [(m["role"], m.get("interrupted", False)) for m in stored] == [
        ("user", False), ("assistant", True), ("user", False), ("assistant", False)]  # fmt: skip
    assert not store.answering(chat_id), "the lease ends with the answer"

    list(service.edit(chat_id, 0, "What is a tuple?"))  # resending the unanswered question
    assert [m["role"] for m in store.messages(chat_id)] == ["user", "assistant"]

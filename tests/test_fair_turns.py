"""Fair turns in the page's queue: a session with many questions waiting does not hold back another."""

from __future__ import annotations

import time
from collections.abc import Callable

from gradio_client import Client

from .busy_model import LONG_ANSWER, give_up, occupy_model
from .live_server import LiveServer


def test_a_session_with_five_waiting_questions_lets_another_go_second(
    start_server: Callable[..., LiveServer], redis_server
) -> None:
    """One sequence, held by an essay. Session A queues five questions, then session B one. B is
    told it is second in line (not sixth) and its answer comes second once the essay is cancelled."""
    server = start_server(redis_server.url, parallel="1", max_new_tokens="8", **LONG_ANSWER)
    greedy, other = Client(server.url, verbose=False), Client(server.url, verbose=False)
    essay = occupy_model(server)
    try:
        chats = [greedy.predict("explain", "beginner", api_name="/new_chat") for _ in range(5)]
        a_jobs = [greedy.submit(chat, f"What is {n} + {n}?", api_name="/chat") for n, chat in enumerate(chats)]
        time.sleep(1.0)
        b_job = other.submit(
            other.predict("explain", "beginner", api_name="/new_chat"), "What is 7 + 7?", api_name="/chat"
        )
        rank = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and rank is None:
            status = b_job.status()
            rank = status.rank if status.code.name in ("QUEUE", "IN_QUEUE") and status.rank is not None else None
            time.sleep(0.1)
        assert rank == 1, f"B's place in line is 2nd (rank 1), not {rank}"
    finally:
        give_up(essay)
    finished: list[str] = []
    deadline = time.monotonic() + 120
    while len(finished) < 6 and time.monotonic() < deadline:
        for name, job in [*((f"A{i}", j) for i, j in enumerate(a_jobs)), ("B", b_job)]:
            if name not in finished and job.done():
                finished.append(name)
        time.sleep(0.02)
    assert finished.index("B") <= 1, f"B answered second at the latest, not after all of A: {finished}"
    assert all(job.result(timeout=30) for job in [*a_jobs, b_job]), "every question was answered"

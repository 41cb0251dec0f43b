"""Redis in trouble, against a live app: a Redis that hangs is reported within seconds while the
app stays alive, and a wrong password is named as such, not passed off as an outage."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from gradio_client import Client

from chmocoder.redis_server import EmbeddedRedis, free_port

from .conftest import LiveServer


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def test_a_hung_redis_is_reported_within_seconds_and_liveness_stays_quick(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """A stopped (SIGSTOP) Redis accepts connections and never answers: requests waited 5 s per call,
    retried three times, so REST took 52 s and /history 84 s to say anything."""
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    assert redis.process is not None
    server = start_server(redis.url)
    chat_id = Client(server.url, verbose=False).predict(api_name="/new_chat")
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        read, read_s = timed(lambda: httpx.get(server.url + f"api/chats/{chat_id}", timeout=60))
        assert read.status_code == 503 and "unreachable" in read.json()["detail"]
        assert read_s < 5, f"the REST read took {read_s:.1f} s to report the hung Redis"
        ready, ready_s = timed(lambda: httpx.get(server.url + "readyz", timeout=60))
        assert ready.status_code == 503 and ready_s < 5
        alive, alive_s = timed(lambda: httpx.get(server.url + "healthz", timeout=60))
        assert alive.status_code == 200 and alive_s < 1
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    assert httpx.get(server.url + f"api/chats/{chat_id}").status_code == 200  # back as soon as Redis is
    redis.stop()


def test_a_wrong_redis_password_is_named_in_readyz_and_the_log(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port(), password="right-password").start()
    try:
        server = start_server(redis.url.replace("right-password", "wrong-password"), until="healthz")
        ready = httpx.get(server.url + "readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "chat storage (Redis) refused the server's password; tell the operator"
        assert "Redis refused our credentials" in server.log()
    finally:
        redis.stop()

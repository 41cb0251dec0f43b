"""Per-client rate limits on the working routes, shared by replicas through Redis: 429 with Retry-After
beyond the limit, while the probes and the page itself are never counted."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from chmocoder.redis_server import EmbeddedRedis

from .conftest import LiveServer

UNKNOWN = "api/chats/" + "A" * 32


def test_replicas_share_one_limit_and_the_refusal_says_when_to_retry(
    start_server: Callable[..., LiveServer], redis_server: EmbeddedRedis
) -> None:
    one = start_server(redis_server.url, rate_limit="6/minute")
    two = start_server(redis_server.url, rate_limit="6/minute")
    for server in (one, two, one, two, one, two):
        assert httpx.get(server.url + UNKNOWN).status_code == 404
    refused = httpx.get(one.url + UNKNOWN)
    assert refused.status_code == 429, "six requests were counted across both replicas"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["detail"].startswith("too many requests (6 per 1 minute); try again in")
    assert httpx.get(two.url + "v1/models").json()["error"]["type"] == "rate_limit_exceeded"
    for _ in range(10):
        assert httpx.get(one.url + "healthz").status_code == 200
        assert httpx.get(one.url).status_code == 200, "loading the page is never counted"


def test_sign_in_attempts_are_limited(start_server: Callable[..., LiveServer], redis_server: EmbeddedRedis) -> None:
    server = start_server(redis_server.url, api_key="sekret-key", sign_in_limit="3/minute")
    codes = [httpx.post(server.url + "login", data={"key": f"guess-{i}"}).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_limits_count_in_the_embedded_redis_too(start_server: Callable[..., LiveServer], tmp_path) -> None:
    """The embedded Redis listens on a unix socket, which the limits' storage first failed to start on."""
    server = start_server("", data_dir=str(tmp_path / "data"), rate_limit="3/minute")
    codes = [httpx.get(server.url + UNKNOWN).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]

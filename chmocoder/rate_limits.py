"""Per-client rate limits on the HTTP routes that do work, counted in Redis so that replicas share them.

A client is its address (as uvicorn reports it: behind a proxy, the forwarded one it trusts); not
a key it sends, which a client could vary at will. What is limited: the REST and
/v1 APIs, the downloads, every event the page or a `gradio_client` sends (`/gradio_api/queue/join`,
`/gradio_api/call/...`) and sign-in attempts; the page's assets, its event stream and the probes are
not, so loading the page never counts against anyone. Over the limit, a request gets 429 with
Retry-After (in OpenAI's error shape under /v1). The counts live in the chats' Redis (moving
window, `limits`' asyncio storage on redis-py, never blocking the event loop), reached the same way
as the chats: by URL, through the same Sentinels (on the primary; counts are not read from
replicas, which lag), or on the same Redis Cluster. If Redis cannot be reached the request is
served: the chats are unavailable then anyway, and the limit is not what should fail. A count
waits at most COUNT_TIMEOUT_S for its answer, and for STORAGE_BACKOFF_S after a failure the limits
are not tried at all: a request waits for a hung Redis about once, for its own call, not twice
(3.2 s a read was seen), and the log says so once per back-off, not per request. A failover
keeps the counts the replica had received (a few hits may be forgotten).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import RedisClusterStorage, RedisSentinelStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from .redis_client import REDIS_TIMEOUT_S, RedisTarget

log = logging.getLogger(__name__)

LIMITED = ("/api/", "/v1/", "/download/", "/gradio_api/queue/join", "/gradio_api/call/")
SIGN_IN = "/login"
STORAGE_BACKOFF_S = 15.0
COUNT_TIMEOUT_S = 0.5  # a count takes well under a millisecond on a Redis that answers


class RateLimits:
    def __init__(self, app: ASGIApp, redis: RedisTarget, per_client: str, sign_in: str, root_path: str = "") -> None:
        self.app = app
        self.root_path = root_path
        self.per_client: RateLimitItem = parse(per_client)
        self.sign_in: RateLimitItem = parse(sign_in)
        self.limiter = MovingWindowRateLimiter(storage_for(redis))
        self._skip_until = 0.0  # monotonic time until which Redis is known to fail the limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(self.root_path)
        item = self._item(path, scope.get("method", ""))
        if item is None:
            await self.app(scope, receive, send)
            return
        if time.monotonic() < self._skip_until:
            await self.app(scope, receive, send)
            return
        client = _client(scope)
        try:
            allowed = await self.limiter.hit(item, client)
            if allowed:
                await self.app(scope, receive, send)
                return
            stats = await self.limiter.get_window_stats(item, client)
        except Exception as exc:  # noqa: BLE001 - any storage failure: serve rather than refuse everyone
            self._skip_until = time.monotonic() + STORAGE_BACKOFF_S
            log.warning("rate limits unavailable (Redis: %r); serving without them for %g s", exc, STORAGE_BACKOFF_S)
            await self.app(scope, receive, send)
            return
        await _refuse(send, path, max(1, math.ceil(stats.reset_time - time.time())), str(item))

    def _item(self, path: str, method: str) -> RateLimitItem | None:
        if path == SIGN_IN:
            return self.sign_in if method == "POST" else None
        return self.per_client if path.startswith(LIMITED) else None


def storage_for(target: RedisTarget) -> RedisStorage:
    """`limits`' storage on the chats' Redis, however that is reached."""
    options: dict[str, Any] = {"socket_timeout": COUNT_TIMEOUT_S, "socket_connect_timeout": REDIS_TIMEOUT_S}
    common: dict[str, Any] = {"implementation": "redispy", "key_prefix": "chmocoder:limits"}
    if target.sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in target.sentinels)
        sentinel_options = {**options, "password": target.sentinel_password or None}
        return RedisSentinelStorage(
            f"async+redis+sentinel://{sentinels}/{target.service}", **common, use_replicas=False,
            sentinel_kwargs=sentinel_options, password=target.password or None, **options,
        )  # fmt: skip
    if target.cluster:
        seed = urlsplit(target.url)
        return RedisClusterStorage(
            f"async+redis+cluster://{seed.hostname}:{seed.port or 6379}", **common,
            username=seed.username and unquote(seed.username), password=seed.password and unquote(seed.password),
            **({"ssl": True} if seed.scheme == "rediss" else {}), **options,
        )  # fmt: skip
    return RedisStorage(async_uri(target.url), **common, **options)


def async_uri(redis_url: str) -> str:
    """limits' spelling of a redis-py URL (the embedded Redis listens on a unix socket)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


async def _refuse(send: Send, path: str, retry_after: int, limit: str) -> None:
    message = f"too many requests ({limit}); try again in {retry_after} s"
    if path.startswith("/v1/"):
        body = {"error": {"message": message, "type": "rate_limit_exceeded", "param": None, "code": "rate_limited"}}
    else:
        body = {"detail": message}
    headers = [(b"content-type", b"application/json"), (b"retry-after", str(retry_after).encode())]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})

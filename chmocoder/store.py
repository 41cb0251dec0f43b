"""Chat transcripts in Redis, each key with a TTL that every write renews.

Layout, per chat id:
  chmocoder:chat:{id}           hash: created, updated, task, level, title
  chmocoder:chat:{id}:messages  list of JSON messages, oldest first

Writes are single Lua scripts, so they are atomic and never rewrite the whole history; a
write to a chat that has expired fails instead of resurrecting half a chat.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

PREFIX = "chmocoder:chat:"
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
T = TypeVar("T")

# KEYS: meta, messages. ARGV: ttl, now, message json (may be ""), title (may be "").
APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[1], 'title', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return 1
"""

# KEYS: meta, messages. ARGV: ttl, now, then field/value pairs.
UPDATE_META = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'updated', ARGV[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return 1
"""


class StoreError(RuntimeError):
    """Base of the store's errors; messages are fit to show to a user."""


class StoreUnavailable(StoreError):
    pass


class ChatNotFound(StoreError):
    pass


def new_chat_id() -> str:
    """192 random bits, URL-safe: unguessable, and short enough for a link."""
    return secrets.token_urlsafe(24)


class ChatStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._append = client.register_script(APPEND)
        self._update_meta = client.register_script(UPDATE_META)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int) -> ChatStore:
        # Retry a blip briefly, but tell the user within about a second when Redis is really down.
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.4, base=0.05), retries=3),
        )
        return cls(client, ttl_seconds)

    @staticmethod
    def keys(chat_id: str) -> list[str]:
        return [PREFIX + chat_id, PREFIX + chat_id + ":messages"]

    @contextmanager
    def _redis(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(
                "chat storage (Redis) is unreachable right now; nothing was saved, try again shortly"
            ) from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"chat storage (Redis) failed: {type(exc).__name__}") from exc

    def _call(self, fn: Callable[[], T]) -> T:
        with self._redis():
            return fn()

    def ping(self) -> bool:
        return bool(self._call(self.client.ping))

    def create(self, task: str, level: str) -> str:
        chat_id = new_chat_id()
        now = str(time.time())
        meta_key = self.keys(chat_id)[0]
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(meta_key, mapping={"created": now, "updated": now, "task": task, "level": level})
            pipe.expire(meta_key, self.ttl)
            pipe.execute()
        return chat_id

    def meta(self, chat_id: str) -> dict[str, str]:
        """The chat's metadata; ChatNotFound for a malformed, unknown or expired id."""
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")
        meta = self._call(lambda: self.client.hgetall(self.keys(chat_id)[0]))
        if not meta:
            raise ChatNotFound("unknown chat id (it may have expired)")
        return meta

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        self.meta(chat_id)
        raw = self._call(lambda: self.client.lrange(self.keys(chat_id)[1], 0, -1))
        return [json.loads(item) for item in raw]

    def append(self, chat_id: str, message: dict[str, Any], title: str = "") -> None:
        """Append one message atomically and renew the chat's TTL."""
        ok = self._call(
            lambda: self._append(
                keys=self.keys(chat_id),
                args=[self.ttl, time.time(), json.dumps(message, ensure_ascii=False), title],
            )
        )
        if not ok:
            raise ChatNotFound("this chat has expired or was deleted")

    def update(self, chat_id: str, **fields: str) -> None:
        """Set metadata fields (task, level, title) and renew the TTL."""
        args: list[Any] = [self.ttl, time.time()]
        for name, value in fields.items():
            args += [name, value]
        if not self._call(lambda: self._update_meta(keys=self.keys(chat_id), args=args)):
            raise ChatNotFound("this chat has expired or was deleted")

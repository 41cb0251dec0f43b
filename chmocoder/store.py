"""Chat transcripts in Redis, each key with a TTL that every write renews.

Layout:
  chmocoder:chat:{id}            hash: created, updated, task, level, title, share
  chmocoder:chat:{id}:messages   list of JSON messages, oldest first
  chmocoder:share:{token}        the chat id a read-only share link opens
  chmocoder:owner:{hash}         set of the chat ids in one browser's list (hash of its owner token)
  chmocoder:chat:{id}:answering  a short lease while some replica is answering the chat

Writes are single Lua scripts, so they are atomic and never rewrite the whole history; a
write to a chat that has expired fails instead of resurrecting half a chat. (The scripts build
the share key from the chat's hash, so the store assumes a single Redis, not a cluster.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .metrics import REDIS_ERRORS

log = logging.getLogger(__name__)
# Each Redis call's connect and read timeout.
REDIS_TIMEOUT_S = 1.5

PREFIX = "chmocoder:chat:"
SHARE_PREFIX = "chmocoder:share:"
OWNER_PREFIX = "chmocoder:owner:"
ANSWERING = ":answering"
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
T = TypeVar("T")

# Renews every key of a chat. KEYS: meta, messages. ARGV[1]: ttl, ARGV[2]: now.
TOUCH = f"""
local function touch()
  redis.call('HSET', KEYS[1], 'updated', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
  local share = redis.call('HGET', KEYS[1], 'share')
  if share then redis.call('EXPIRE', '{SHARE_PREFIX}' .. share, ARGV[1]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
"""

# ARGV: ttl, now, message json ("" = none), title ("" = keep), keep (-1 = all; n = drop messages n..),
# once ("1" = not if the chat already ends with this very message).
APPEND = TOUCH + """
if ARGV[6] == '1' and redis.call('LINDEX', KEYS[2], -1) == ARGV[3] then touch() return 1 end
local keep = tonumber(ARGV[5])
if keep == 0 then redis.call('DEL', KEYS[2]) elseif keep > 0 then redis.call('LTRIM', KEYS[2], 0, keep - 1) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[1], 'title', ARGV[4]) end
touch()
return 1
"""

# ARGV: ttl, now, then field/value pairs.
UPDATE_META = TOUCH + """
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
touch()
return 1
"""

# ARGV: ttl, now, a fresh token (used only if the chat has none yet). Returns the chat's token.
SHARE = TOUCH + f"""
local token = redis.call('HGET', KEYS[1], 'share')
if not token then
  token = ARGV[3]
  redis.call('HSET', KEYS[1], 'share', token)
end
redis.call('SET', '{SHARE_PREFIX}' .. token, ARGV[4], 'EX', ARGV[1])
touch()
return token
"""

DELETE = f"""
local share = redis.call('HGET', KEYS[1], 'share')
if share then redis.call('DEL', '{SHARE_PREFIX}' .. share) end
return redis.call('DEL', KEYS[1], KEYS[2])
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


def owner_key(owner: str) -> str:
    """The owner token itself never reaches Redis: only a hash of it, as the list's key."""
    return OWNER_PREFIX + hashlib.sha256(owner.encode()).hexdigest()[:40]


class ChatStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._append = client.register_script(APPEND)
        self._update_meta = client.register_script(UPDATE_META)
        self._share = client.register_script(SHARE)
        self._delete = client.register_script(DELETE)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int) -> ChatStore:
        # Retry a refused connection (a restart, a failover) briefly, but never a Redis that does not
        # answer: with 5 s timeouts retried three times a hung Redis held a request 20 s per call.
        # A hung or unreachable Redis is reported within about 2 s.
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.4, base=0.05), retries=3, supported_errors=(redis.ConnectionError,)),
        )
        return cls(client, ttl_seconds)

    @staticmethod
    def keys(chat_id: str) -> list[str]:
        return [PREFIX + chat_id, PREFIX + chat_id + ":messages"]

    @contextmanager
    def _redis(self) -> Iterator[None]:
        """Count Redis failures and turn them into a message a user can act on."""
        try:
            yield
        except redis.AuthenticationError as exc:  # a setup error, not an outage: say so to the operator
            REDIS_ERRORS.inc()
            log.error("Redis refused our credentials (the password in CHMOCODER_REDIS_URL): %s", exc)
            raise StoreUnavailable("chat storage (Redis) refused the server's password; tell the operator") from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            REDIS_ERRORS.inc()
            raise StoreUnavailable(
                "chat storage (Redis) is unreachable right now; nothing was saved, try again shortly"
            ) from exc
        except redis.RedisError as exc:
            REDIS_ERRORS.inc()
            raise StoreUnavailable(f"chat storage (Redis) failed: {type(exc).__name__}") from exc

    def _call(self, fn: Callable[[], T]) -> T:
        with self._redis():
            return fn()

    def _script(self, script: Any, chat_id: str, *args: Any) -> Any:
        """Run a chat script; 0 means the chat is gone (expired or deleted)."""
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")
        result = self._call(lambda: script(keys=self.keys(chat_id), args=[self.ttl, time.time(), *args]))
        if not result:
            raise ChatNotFound("this chat has expired or was deleted")
        return result

    def ping(self) -> bool:
        return bool(self._call(self.client.ping))

    # -- one chat ------------------------------------------------------------------------------

    def create(self, task: str, level: str, owner: str | None = None) -> str:
        chat_id = new_chat_id()
        now = str(time.time())
        meta_key = self.keys(chat_id)[0]
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            creator = owner_key(owner) if owner else ""  # "": nobody (a chat made without an owner token)
            fields = {"created": now, "updated": now, "task": task, "level": level, "creator": creator}
            pipe.hset(meta_key, mapping=fields)
            pipe.expire(meta_key, self.ttl)
            if owner:
                pipe.sadd(owner_key(owner), chat_id)
                pipe.expire(owner_key(owner), self.ttl)
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

    def chat(self, chat_id: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Metadata and messages in one round trip (one MULTI, so they agree with each other)."""
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")
        meta_key, messages_key = self.keys(chat_id)
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(meta_key)
            pipe.lrange(messages_key, 0, -1)
            meta, raw = pipe.execute()
        if not meta:
            raise ChatNotFound("unknown chat id (it may have expired)")
        return meta, [json.loads(item) for item in raw]

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        return self.chat(chat_id)[1]

    # -- which chats are being answered (by any replica) ---------------------------------------

    def mark_answering(self, chat_id: str, seconds: int) -> None:
        """A lease saying a replica is answering this chat; renewed while it does, gone if it dies."""
        self._call(lambda: self.client.set(PREFIX + chat_id + ANSWERING, "1", ex=seconds))

    def done_answering(self, chat_id: str) -> None:
        self._call(lambda: self.client.delete(PREFIX + chat_id + ANSWERING))

    def answering(self, chat_id: str) -> bool:
        return bool(self._call(lambda: self.client.exists(PREFIX + chat_id + ANSWERING)))

    def append(
        self, chat_id: str, message: dict[str, Any], title: str = "", keep: int | None = None, *, once: bool = False
    ) -> None:
        """Append one message atomically and renew the chat's TTL.

        `keep=n` first drops every message from index n on, in the same atomic step: that is how
        Regenerate and Edit replace the end of a chat without a read-modify-write of the rest.
        `once`: not if the chat already ends with this very message (a save repeated after a timeout
        that may have reached Redis).
        """
        body = json.dumps(message, ensure_ascii=False)
        self._script(self._append, chat_id, body, title, -1 if keep is None else keep, "1" if once else "")

    def truncate(self, chat_id: str, keep: int) -> None:
        """Drop every message from index `keep` on (Undo)."""
        self._script(self._append, chat_id, "", "", keep, "")

    def update(self, chat_id: str, **fields: str) -> None:
        """Set metadata fields (task, level, title) and renew the TTL."""
        args: list[str] = []
        for name, value in fields.items():
            args += [name, value]
        self._script(self._update_meta, chat_id, *args)

    def delete(self, chat_id: str) -> None:
        self._script(self._delete, chat_id)

    # -- sharing -------------------------------------------------------------------------------

    def share(self, chat_id: str) -> str:
        """The chat's read-only share token (made on first use; it expires with the chat)."""
        return str(self._script(self._share, chat_id, secrets.token_urlsafe(24), chat_id))

    def shared_chat(self, token: str) -> str:
        """The chat id behind a share token; ChatNotFound if it is unknown or expired."""
        chat_id = self._call(lambda: self.client.get(SHARE_PREFIX + token)) if TOKEN.match(token or "") else None
        if not chat_id:
            raise ChatNotFound("this share link is unknown or the chat has expired")
        return str(chat_id)

    # -- one browser's list of chats -----------------------------------------------------------

    def adopt(self, owner: str, chat_id: str) -> None:
        """Put a chat in an owner's list (a chat created elsewhere and opened by its id)."""
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.sadd(owner_key(owner), chat_id)
            pipe.expire(owner_key(owner), self.ttl)
            pipe.execute()

    def owns(self, owner: str, chat_id: str) -> bool:
        """The chat is in the owner's list (made there, or opened there by its id)."""
        return bool(self._call(lambda: self.client.sismember(owner_key(owner), chat_id)))

    def created_by(self, owner: str, chat_id: str, meta: dict[str, str]) -> bool:
        """The owner started this chat. A chat made before creators were recorded (no `creator` field)
        counts as created by every list that holds it, as before, until it expires."""
        creator = meta.get("creator")
        if creator is None:
            return self.owns(owner, chat_id)
        return bool(creator) and hmac.compare_digest(creator, owner_key(owner))

    def forget(self, owner: str, chat_id: str) -> None:
        self._call(lambda: self.client.srem(owner_key(owner), chat_id))

    def owned_chats(self, owner: str) -> list[dict[str, Any]]:
        """The owner's chats, most recently used first; expired ones are dropped from the list."""
        key = owner_key(owner)
        with self._redis():
            ids = sorted(self.client.smembers(key))
            pipe = self.client.pipeline(transaction=False)
            for chat_id in ids:
                pipe.hmget(self.keys(chat_id)[0], "title", "task", "level", "created", "updated", "creator")
            rows = pipe.execute()
            gone = [chat_id for chat_id, row in zip(ids, rows, strict=True) if row[3] is None]
            if gone:
                self.client.srem(key, *gone)
            if ids:
                self.client.expire(key, self.ttl)
        chats = [
            {"id": chat_id, "title": title or "", "task": task, "level": level,
             "created": float(created), "updated": float(updated or created),
             "guest": creator is not None and creator != key}
            for chat_id, (title, task, level, created, updated, creator) in zip(ids, rows, strict=True)
            if created is not None
        ]
        return sorted(chats, key=lambda c: c["updated"], reverse=True)

"""Chat transcripts in Redis, each key with a TTL that every write renews.

Layout (the `{id}` braces are literal: a Redis Cluster hash tag, so all keys of one chat share one
hash slot):
  chmocoder:chat:{<id>}            hash: created, updated, task, level, title, share, creator, ttl
  chmocoder:chat:{<id>}:messages   list of JSON messages, oldest first
  chmocoder:chat:{<id>}:answering  a short lease while some replica is answering the chat
  chmocoder:share:<token>          the chat id a read-only share link opens
  chmocoder:owner:<hash>           set of the chat ids in one browser's list (hash of its owner token)
  chmocoder:owner:<hash>:instructions  that browser's standing instructions (text), renewed when read
  chmocoder:layout                 "hash-tagged" once chats of older versions were moved (below)

Writes to a chat are single Lua scripts over that chat's own keys only (one slot), so they are
atomic, never rewrite the whole history, and run on a single Redis, behind Sentinel, or on a
Redis Cluster alike; a write to a chat that has expired fails instead of resurrecting half a chat.
The share and owner keys live in other slots, so they are written in calls of their own: a script
returns the chat's share token and the store renews (or deletes) the share key next. A share link is
only honoured while the chat's own `share` field still names it, so a share key left behind by a
failed second call opens nothing.

Older versions named the chat keys without braces (`chmocoder:chat:<id>`...). On a single Redis or
behind Sentinel (a cluster never held that layout: its scripts crossed slots) the app moves such
keys to the new names at its first start, in the background (SCAN + RENAME, idempotent), and a
chat not found under its new name is looked for under its old one, so nothing an older version
wrote is lost, not even by older replicas still running during a rolling update.

Durability. Every Redis node is assumed to run with `appendonly yes` and `appendfsync everysec`
(the embedded Redis uses `always`): a crash of the Redis process alone loses (almost) nothing it
acknowledged, since its writes are already in the OS's page cache; a machine losing power loses up
to the last one or two seconds of that node's writes. Replication is asynchronous, so a failover
(Sentinel promoting a replica) loses what the replica had not yet received. With `wait_replicas` > 0
a finished answer is followed by WAIT on the same connection: once that many replicas acknowledge
it, it and every earlier write (its question included) survive the loss of the primary. When fewer
acknowledge in time, the chat service keeps the answer (with its question) in its local journal as
well and writes it again, once, later. A finished answer is then lost only if the primary and the
acknowledging replicas all lose power within the same second, or the journal's disk is lost too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from .metrics import REDIS_ERRORS
from .records import ChatMeta, StoredMessage
from .redis_client import RedisTarget, RedisUnreachable, connect

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)

PREFIX = "chmocoder:chat:"
SHARE_PREFIX = "chmocoder:share:"
OWNER_PREFIX = "chmocoder:owner:"
MESSAGES = ":messages"
INSTRUCTIONS = ":instructions"
ANSWERING = ":answering"
CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
# A chat key of the layout before hash tags, as SCAN finds it.
OLD_KEY = re.compile(r"^chmocoder:chat:([A-Za-z0-9_-]{32})(?::messages|:answering)?$")
# Set once every chat of an older version has been moved to the hash-tagged names.
LAYOUT_KEY, LAYOUT = "chmocoder:layout", "hash-tagged"
# `once`: a message already among the chat's last this many is not appended again.
ONCE_WINDOW = 8
T = TypeVar("T")

# Renews a chat's keys; touch() returns the chat's share token (whose key the caller renews), or 1.
# KEYS: meta, messages, answering. ARGV[1]: ttl, ARGV[2]: now. A chat its creator chose to keep longer
# has its own lifetime in its `ttl` field.
TOUCH = """
local function touch()
  redis.call('HSET', KEYS[1], 'updated', ARGV[2])
  local ttl = redis.call('HGET', KEYS[1], 'ttl') or ARGV[1]
  redis.call('EXPIRE', KEYS[1], ttl)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
  return redis.call('HGET', KEYS[1], 'share') or 1
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
"""

# ARGV: ttl, now, message json ("" = none), title ("" = keep), keep (-1 = all; n = drop messages n..),
# once ("1" = not if this very message is among the chat's last ONCE_WINDOW).
APPEND = (
    TOUCH
    + f"""
if ARGV[6] == '1' then
  for _, earlier in ipairs(redis.call('LRANGE', KEYS[2], -{ONCE_WINDOW}, -1)) do
    if earlier == ARGV[3] then return touch() end
  end
end
"""
    + """
local keep = tonumber(ARGV[5])
if keep == 0 then redis.call('DEL', KEYS[2]) elseif keep > 0 then redis.call('LTRIM', KEYS[2], 0, keep - 1) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[1], 'title', ARGV[4]) end
return touch()
"""
)

# ARGV: ttl, now, then field/value pairs.
UPDATE_META = (
    TOUCH
    + """
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
return touch()
"""
)

# ARGV: ttl, now, a fresh token (used only if the chat has none yet). Returns the chat's token.
SHARE = (
    TOUCH
    + """
local token = redis.call('HGET', KEYS[1], 'share')
if not token then
  token = ARGV[3]
  redis.call('HSET', KEYS[1], 'share', token)
end
touch()
return token
"""
)

# Rates one answer: a compare-and-set of the message at ARGV[3] (ARGV[4] as read, ARGV[5] rated), so a
# message replaced meanwhile (Regenerate, Edit) is never overwritten with a stale copy. -1: it changed.
RATE = (
    TOUCH
    + """
if redis.call('LINDEX', KEYS[2], ARGV[3]) ~= ARGV[4] then return -1 end
redis.call('LSET', KEYS[2], ARGV[3], ARGV[5])
return touch()
"""
)

# Returns 0 if the chat was gone, else its share token (whose key the caller deletes) or 1.
DELETE = """
local share = redis.call('HGET', KEYS[1], 'share')
if redis.call('DEL', KEYS[1], KEYS[2]) == 0 then return 0 end
redis.call('DEL', KEYS[3])
return share or 1
"""

# Moves one chat from the old key names (KEYS 1-3) to the new ones (KEYS 4-6) in one step, so no write
# sees half a chat moved; a new name already taken is left alone. Returns how many keys moved.
MOVE_OLD = """
local moved = 0
for i = 1, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('EXISTS', KEYS[i + 3]) == 0 then
    redis.call('RENAME', KEYS[i], KEYS[i + 3])
    moved = moved + 1
  end
end
return moved
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


def chat_keys(chat_id: str) -> list[str]:
    """A chat's meta, messages and answering keys, in one hash slot (the braces are a hash tag)."""
    meta = PREFIX + "{" + chat_id + "}"
    return [meta, meta + MESSAGES, meta + ANSWERING]


def old_chat_keys(chat_id: str) -> list[str]:
    """The same keys as versions before hash tags named them."""
    meta = PREFIX + chat_id
    return [meta, meta + MESSAGES, meta + ANSWERING]


class ChatStore:
    def __init__(self, client: redis.Redis | RedisCluster, ttl_seconds: int, wait_replicas: int = 0,
                 wait_ms: int = 500, max_ttl_seconds: int | None = None) -> None:  # fmt: skip
        self.client = client
        self.ttl = ttl_seconds  # a chat's lifetime after its last write, unless its creator chose longer
        self.max_ttl = max(ttl_seconds, max_ttl_seconds or ttl_seconds)  # the longest a creator may choose
        # Owner lists, instructions and share keys outlive any chat they name (a dangling id is pruned).
        self.list_ttl = self.max_ttl
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        # A cluster never held the old layout; elsewhere a chat missing under its new keys is looked for
        # under the old ones.
        self.cluster = isinstance(client, RedisCluster)
        self._append = client.register_script(APPEND)
        self._update_meta = client.register_script(UPDATE_META)
        self._share = client.register_script(SHARE)
        self._delete = client.register_script(DELETE)
        self._rate = client.register_script(RATE)
        self._move_old = client.register_script(MOVE_OLD)

    @classmethod
    def open(
        cls, target: RedisTarget, ttl_seconds: int, wait_replicas: int = 0, wait_ms: int = 500, max_ttl: int = 0
    ) -> ChatStore:
        try:
            client = connect(target)
        except RedisUnreachable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return cls(client, ttl_seconds, wait_replicas, wait_ms, max_ttl or None)

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int, max_ttl_seconds: int = 0) -> ChatStore:
        return cls.open(RedisTarget(url=url), ttl_seconds, max_ttl=max_ttl_seconds)

    @classmethod
    def for_app(cls, settings: Settings, target: RedisTarget) -> ChatStore:
        """The app's store, as configured; chats an older version left under the old key names are moved
        in the background (off the request path; a chat opened meanwhile is moved on the spot)."""
        store = cls.open(
            target,
            settings.chat_ttl_seconds,
            settings.redis_wait_replicas,
            settings.redis_wait_ms,
            settings.chat_ttl_max_seconds,
        )
        if not store.cluster:
            threading.Thread(target=store._migrate_logged, name="chmocoder-migrate", daemon=True).start()
        return store

    @staticmethod
    def keys(chat_id: str) -> list[str]:
        """The chat's meta and messages keys."""
        return chat_keys(chat_id)[:2]

    @contextmanager
    def _redis(self) -> Iterator[None]:
        """Count Redis failures and turn them into a message a user can act on."""
        try:
            yield
        except redis.AuthenticationError as exc:  # a setup error, not an outage: say so to the operator
            REDIS_ERRORS.inc()
            log.error("Redis refused our credentials (CHMOCODER_REDIS_URL's, or CHMOCODER_REDIS_PASSWORD): %s", exc)
            raise StoreUnavailable("chat storage (Redis) refused the server's password; tell the operator") from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            REDIS_ERRORS.inc()
            raise StoreUnavailable(
                "chat storage (Redis) is unreachable right now; nothing was saved, try again shortly"
            ) from exc
        except (redis.RedisError, RedisClusterException) as exc:
            REDIS_ERRORS.inc()
            raise StoreUnavailable(f"chat storage (Redis) failed: {type(exc).__name__}") from exc

    def _call(self, fn: Callable[[], T]) -> T:
        with self._redis():
            return fn()

    def _script(self, script: Any, chat_id: str, *args: Any) -> Any:
        """Run a chat script; 0 means the chat is gone (expired or deleted). A string result is the chat's
        share token, whose key (in another slot) is then renewed."""
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")

        def run() -> Any:
            return self._call(lambda: script(keys=chat_keys(chat_id), args=[self.ttl, time.time(), *args]))

        result = run()
        if not result and self._moved_from_old_keys([chat_id]):
            result = run()
        if not result:
            raise ChatNotFound("this chat has expired or was deleted")
        return result

    def _renew_share(self, chat_id: str, token: Any) -> None:
        """Keep a shared chat's link alive as long as the chat. A failure only shortens the link's life
        until the chat's next write; the chat's own write has succeeded, so it is not reported as failed."""
        if isinstance(token, str):
            try:
                self._call(lambda: self.client.set(SHARE_PREFIX + token, chat_id, ex=self.list_ttl))
            except StoreError:
                log.warning("could not renew the share link of chat=%s", chat_id)

    def ping(self) -> bool:
        return bool(self._call(self.client.ping))

    # -- one chat ------------------------------------------------------------------------------

    def create(self, task: str, level: str, owner: str | None = None, title: str = "") -> str:
        chat_id = new_chat_id()
        now = str(time.time())
        meta_key = chat_keys(chat_id)[0]
        creator = owner_key(owner) if owner else ""  # "": nobody (a chat made without an owner token)
        fields = {"created": now, "updated": now, "task": task, "level": level, "creator": creator}
        if title:
            fields["title"] = title
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(meta_key, mapping=fields)
            pipe.expire(meta_key, self.ttl)
            pipe.execute()
        if owner:  # the owner's list is in another slot: a second step (if it fails, the chat just expires)
            self.adopt(owner, chat_id)
        return chat_id

    def meta(self, chat_id: str) -> ChatMeta:
        """The chat's metadata; ChatNotFound for a malformed, unknown or expired id."""
        return self.chat(chat_id, messages=False)[0]

    def chat(self, chat_id: str, messages: bool = True) -> tuple[ChatMeta, list[StoredMessage]]:
        """Metadata and messages in one round trip (one MULTI on the chat's slot, so they agree)."""
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")
        meta, raw = self._read(chat_id, messages)
        if not meta and self._moved_from_old_keys([chat_id]):
            meta, raw = self._read(chat_id, messages)
        if not meta:
            raise ChatNotFound("unknown chat id (it may have expired)")
        return meta, [json.loads(item) for item in raw]

    def _read(self, chat_id: str, messages: bool) -> tuple[dict[str, str], list[str]]:
        meta_key, messages_key, _ = chat_keys(chat_id)
        if not messages:
            return self._call(lambda: self.client.hgetall(meta_key)), []
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.hgetall(meta_key)
            pipe.lrange(messages_key, 0, -1)
            meta, raw = pipe.execute()
        return meta, raw

    def messages(self, chat_id: str) -> list[StoredMessage]:
        return self.chat(chat_id)[1]

    def raw_transcripts(self, chat_ids: list[str]) -> dict[str, list[str]]:
        """The messages of many chats as stored (JSON text), in one pipeline (on a cluster, one per
        node): search decodes only the chats that may match."""
        with self._redis():
            pipe = self.client.pipeline(transaction=False)
            for chat_id in chat_ids:
                pipe.lrange(chat_keys(chat_id)[1], 0, -1)
            rows = pipe.execute() if chat_ids else []
        return dict(zip(chat_ids, rows, strict=True))

    # -- which chats are being answered (by any replica) ---------------------------------------

    def mark_answering(self, chat_id: str, seconds: int) -> None:
        """A lease saying a replica is answering this chat; renewed while it does, gone if it dies."""
        self._call(lambda: self.client.set(chat_keys(chat_id)[2], "1", ex=seconds))

    def done_answering(self, chat_id: str) -> None:
        self._call(lambda: self.client.delete(chat_keys(chat_id)[2]))

    def answering(self, chat_id: str) -> bool:
        return bool(self._call(lambda: self.client.exists(chat_keys(chat_id)[2])))

    def append(
        self, chat_id: str, message: dict[str, Any], title: str = "", keep: int | None = None, *, once: bool = False
    ) -> None:
        """Append one message atomically and renew the chat's TTL.

        `keep=n` first drops every message from index n on, in the same atomic step: that is how
        Regenerate and Edit replace the end of a chat without a read-modify-write of the rest.
        `once`: not if this very message is among the chat's last few already (a save repeated after a
        timeout or a failover that may have kept it after all; saved messages carry their time).
        """
        body = json.dumps(message, ensure_ascii=False)
        token = self._script(self._append, chat_id, body, title, -1 if keep is None else keep, "1" if once else "")
        self._renew_share(chat_id, token)

    def append_replicated(self, chat_id: str, message: dict[str, Any]) -> bool:
        """Append a finished answer (once) and, with `wait_replicas`, WAIT until that many replicas have
        it. WAIT counts the writes of its own connection, so both go down one connection (a pipeline,
        to the chat's node on a cluster). False: fewer acknowledged within `wait_ms`, so the answer is on
        the primary only and a failover now could lose it."""
        if not self.wait_replicas:
            self.append(chat_id, message, once=True)
            return True
        if not CHAT_ID.match(chat_id or ""):
            raise ChatNotFound("unknown chat id (it may have expired)")
        keys = chat_keys(chat_id)
        args = [self.ttl, time.time(), json.dumps(message, ensure_ascii=False), "", -1, "1"]

        def append_and_wait() -> list[Any]:
            pipe = self._node(keys[0]).pipeline(transaction=False)
            self._append(keys=keys, args=args, client=pipe)
            pipe.wait(self.wait_replicas, self.wait_ms)
            return pipe.execute()

        token, acknowledged = self._call(append_and_wait)
        if not token:
            raise ChatNotFound("this chat has expired or was deleted")
        self._renew_share(chat_id, token)
        return int(acknowledged) >= self.wait_replicas

    def _node(self, key: str) -> redis.Redis:
        """The client of the one server that holds `key`: the primary, or on a cluster the key's node."""
        if isinstance(self.client, RedisCluster):
            return self.client.get_redis_connection(self.client.get_node_from_key(key))
        return self.client

    def truncate(self, chat_id: str, keep: int) -> None:
        """Drop every message from index `keep` on (Undo)."""
        self._renew_share(chat_id, self._script(self._append, chat_id, "", "", keep, ""))

    def update(self, chat_id: str, **fields: str) -> None:
        """Set metadata fields (task, level, title) and renew the TTL."""
        args: list[str] = []
        for name, value in fields.items():
            args += [name, value]
        self._renew_share(chat_id, self._script(self._update_meta, chat_id, *args))

    def keep(self, chat_id: str, seconds: int) -> None:
        """Keep the chat `seconds` after its last use from now on (renewed now, and by every write)."""
        if not self.ttl <= seconds <= self.max_ttl:
            raise ValueError(f"a chat is kept {self.ttl} to {self.max_ttl} seconds, not {seconds}")
        self._renew_share(chat_id, self._script(self._update_meta, chat_id, "ttl", str(seconds)))

    def rate(self, chat_id: str, index: int, rating: str | None) -> StoredMessage:
        """Set (or with None clear) the reader's rating of the answer at `index`; the rated message.
        ValueError: no answer there (a question, a placeholder, or past the end)."""
        messages_key = chat_keys(chat_id)[1]
        for _ in range(5):  # the message changed between reading and writing it: read it again
            raw = self._call(lambda: self.client.lindex(messages_key, index)) if index >= 0 else None
            if raw is None:
                self.meta(chat_id)  # ChatNotFound for a chat that is gone
                raise ValueError(f"this chat has no message {index}")
            message: StoredMessage = json.loads(raw)
            if message["role"] != "assistant" or message.get("interrupted"):
                raise ValueError("only an answer can be rated")
            message.pop("feedback", None)
            if rating:
                message["feedback"] = rating  # type: ignore[typeddict-item]
            body = json.dumps(message, ensure_ascii=False)
            token = self._script(self._rate, chat_id, index, raw, body)
            if token != -1:
                self._renew_share(chat_id, token)
                return message
        raise StoreUnavailable("this chat is changing right now; rate the answer again in a moment")

    def delete(self, chat_id: str) -> None:
        """Delete the chat, then its share key (another slot); a share key left behind opens nothing."""
        token = self._script(self._delete, chat_id)
        if isinstance(token, str):
            self._call(lambda: self.client.delete(SHARE_PREFIX + token))

    # -- sharing -------------------------------------------------------------------------------

    def share(self, chat_id: str) -> str:
        """The chat's read-only share token (made on first use; it expires with the chat). The token is
        recorded in the chat first, then its key is written: a failure in between is repaired by the
        next call, which finds the same token."""
        token = str(self._script(self._share, chat_id, secrets.token_urlsafe(24)))
        self._call(lambda: self.client.set(SHARE_PREFIX + token, chat_id, ex=self.list_ttl))
        return token

    def shared_chat(self, token: str) -> str:
        """The chat id behind a share token; ChatNotFound if it is unknown, or its chat was deleted or
        expired (the chat's own `share` field must still name this token)."""
        chat_id = self._call(lambda: self.client.get(SHARE_PREFIX + token)) if TOKEN.match(token or "") else None
        gone = ChatNotFound("this share link is unknown, or its chat was deleted or has expired")
        if not chat_id:
            raise gone
        try:
            share = self.meta(str(chat_id)).get("share", "")
        except ChatNotFound:
            raise gone from None
        if not hmac.compare_digest(share, token):
            raise gone
        return str(chat_id)

    # -- one browser's list of chats -----------------------------------------------------------

    def adopt(self, owner: str, chat_id: str) -> None:
        """Put a chat in an owner's list (a chat created elsewhere and opened by its id)."""
        with self._redis():
            pipe = self.client.pipeline(transaction=True)
            pipe.sadd(owner_key(owner), chat_id)
            pipe.expire(owner_key(owner), self.list_ttl)
            pipe.execute()

    def owns(self, owner: str, chat_id: str) -> bool:
        """The chat is in the owner's list (made there, or opened there by its id)."""
        return bool(self._call(lambda: self.client.sismember(owner_key(owner), chat_id)))

    def created_by(self, owner: str, chat_id: str, meta: ChatMeta) -> bool:
        """The owner started this chat. A chat made before creators were recorded (no `creator` field)
        counts as created by every list that holds it, as before, until it expires."""
        creator = meta.get("creator")
        if creator is None:
            return self.owns(owner, chat_id)
        return bool(creator) and hmac.compare_digest(creator, owner_key(owner))

    # -- standing instructions ------------------------------------------------------------------

    def instructions(self, owner: str) -> str:
        """The owner's standing instructions ("" if none); reading renews them, as using a chat does."""
        key = owner_key(owner) + INSTRUCTIONS
        with self._redis():
            pipe = self.client.pipeline(transaction=False)
            pipe.get(key)
            pipe.expire(key, self.list_ttl)
            text, _ = pipe.execute()
        return text or ""

    def set_instructions(self, owner: str, text: str) -> None:
        """Keep `text` as the owner's standing instructions; "" removes them."""
        key = owner_key(owner) + INSTRUCTIONS
        self._call(lambda: self.client.set(key, text, ex=self.list_ttl) if text else self.client.delete(key))

    def forget(self, owner: str, chat_id: str) -> None:
        self._call(lambda: self.client.srem(owner_key(owner), chat_id))

    def owned_chats(self, owner: str) -> list[dict[str, Any]]:
        """The owner's chats, most recently used first; expired ones are dropped from the list."""
        key = owner_key(owner)
        ids = sorted(self._call(lambda: self.client.smembers(key)))
        rows = self._list_rows(ids)
        missing = [chat_id for chat_id in ids if rows[chat_id][3] is None]
        if missing and self._moved_from_old_keys(missing):
            rows.update(self._list_rows(missing))
        gone = [chat_id for chat_id in ids if rows[chat_id][3] is None]
        with self._redis():
            if gone:
                self.client.srem(key, *gone)
            if ids:
                self.client.expire(key, self.list_ttl)
        chats = []
        now = time.time()
        for chat_id in ids:
            title, task, level, created, updated, creator, keep, left = rows[chat_id]
            if created is not None:
                chats.append({"id": chat_id, "title": title or "", "task": task, "level": level,
                              "created": float(created), "updated": float(updated or created),
                              "guest": creator is not None and creator != key,
                              "expires_at": round(now + max(int(left or 0), 0)),
                              "keep_s": int(keep or self.ttl)})  # fmt: skip
        return sorted(chats, key=lambda c: c["updated"], reverse=True)

    def _list_rows(self, ids: list[str]) -> dict[str, list[Any]]:
        """The list's fields of each chat and its seconds left, in one pipeline (on a cluster, one per node)."""
        with self._redis():
            pipe = self.client.pipeline(transaction=False)
            for chat_id in ids:
                meta_key = chat_keys(chat_id)[0]
                pipe.hmget(meta_key, "title", "task", "level", "created", "updated", "creator", "ttl")
                pipe.ttl(meta_key)
            found = pipe.execute() if ids else []
        return {chat_id: [*found[2 * i], found[2 * i + 1]] for i, chat_id in enumerate(ids)}

    # -- the layout before hash tags -----------------------------------------------------------

    def _moved_from_old_keys(self, chat_ids: Iterable[str]) -> int:
        """Move these chats from their old key names, if they are there; how many keys moved."""
        if self.cluster:
            return 0
        with self._redis():
            pipe = self.client.pipeline(transaction=False)
            for chat_id in chat_ids:
                self._move_old(keys=[*old_chat_keys(chat_id), *chat_keys(chat_id)], client=pipe)
            return sum(pipe.execute())

    def migrate_old_keys(self, batch: int = 500) -> int:
        """Move every chat still under the old key names (SCAN + RENAME); how many keys moved. Idempotent:
        safe to run again, and on several replicas at once."""
        if self.cluster:
            return 0
        moved, found = 0, set()
        with self._redis():
            for key in self.client.scan_iter(match=PREFIX + "[^{]*", count=1000):
                old = OLD_KEY.match(key)
                if old:
                    found.add(old[1])
                if len(found) >= batch:
                    moved, found = moved + self._moved_from_old_keys(found), set()
        return moved + (self._moved_from_old_keys(found) if found else 0)

    def _migrate_logged(self) -> None:
        """The migration at start, once per Redis: a marker key says it ran to the end (chats an older
        replica writes later are moved when opened or listed)."""
        try:
            if self._call(lambda: self.client.get(LAYOUT_KEY)) == LAYOUT:
                return
            moved = self.migrate_old_keys()
            self._call(lambda: self.client.set(LAYOUT_KEY, LAYOUT))
        except StoreError as exc:
            log.warning("could not move chats from the old key layout now (%s); each moves when opened", exc)
            return
        log.info("moved %d key(s) of older chats to the hash-tagged layout", moved)

"""Redis high availability, on real servers started here: a primary killed mid-conversation behind
Sentinel loses no finished turn, an answer no replica acknowledged waits in the journal too, the
store works on a Redis Cluster, and chats written under the old key layout survive the upgrade."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chmocoder.chat import ChatService, TurnOptions
from chmocoder.errors import Unavailable
from chmocoder.journal import Journal
from chmocoder.local_engine import LocalEngine
from chmocoder.redis_client import RedisTarget
from chmocoder.redis_server import EmbeddedRedis, free_port
from chmocoder.settings import Settings
from chmocoder.store import ChatNotFound, ChatStore, chat_keys, owner_key

from .conftest import LiveServer, make_settings
from .redis_nodes import SERVICE, Node, Nodes, form_cluster, sentinel_group, wait_until

QUESTIONS = [
    "What is a Python list? One sentence.",
    "How do I add an item to it? One sentence.",
    "Explain in detail how Python dictionaries work, with examples.",
    "And how do I remove an item from a list? One sentence.",
]
ME = "o" * 43


@pytest.fixture()
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    group = Nodes(tmp_path / "redis")
    try:
        yield group
    finally:
        group.stop_all()


def sentinel_settings(sentinels: list[Node], tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(
        "", redis_sentinels=",".join(f"127.0.0.1:{s.port}" for s in sentinels), redis_sentinel_service=SERVICE,
        verify_enabled=False, max_new_tokens=8, journal_dir=str(tmp_path / "journal"), **overrides,
    )  # fmt: skip


def answer(service: ChatService, chat_id: str, question: str, options: TurnOptions = TurnOptions()) -> str:
    final = list(service.send(chat_id, question, options))[-1]
    assert final.done and not final.stopped and final.text
    return final.text


def answer_when_possible(service: ChatService, chat_id: str, question: str, timeout: float) -> tuple[str, int]:
    """Ask as a user does during an outage: a refused turn is sent again a moment later."""
    deadline, refused = time.monotonic() + timeout, 0
    while True:
        try:
            return answer(service, chat_id, question), refused
        except Unavailable:
            refused += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stored_turns(node: Node, chat_id: str) -> list[tuple[str, str]]:
    """The chat's messages as one server holds them: (role, content), oldest first."""
    raw = node.client().lrange(chat_keys(chat_id)[1], 0, -1)
    return [(m["role"], m["content"]) for m in map(json.loads, raw)]


def as_messages(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [pair for question, reply in turns for pair in (("user", question), ("assistant", reply))]


class watch_promotion(threading.Thread):  # noqa: N801 - used like a function
    """Measures, from `since`, how long Sentinel takes to name `replica` the primary."""

    def __init__(self, sentinel: Node, replica: Node, since: float) -> None:
        super().__init__(daemon=True)
        self.sentinel, self.replica, self.since, self.seconds = sentinel, replica, since, float("nan")
        self.start()

    def run(self) -> None:
        address = self.sentinel.client().sentinel_get_master_addr_by_name
        wait_until(lambda: int(address(SERVICE)[1]) == self.replica.port, 30, "the failover", every=0.02)
        self.seconds = time.monotonic() - self.since


def test_the_conversation_continues_after_the_primary_is_killed_and_no_finished_turn_is_lost(
    engine: LocalEngine, nodes: Nodes, tmp_path: Path
) -> None:
    """Behind Sentinel, with WAIT for one replica: two turns, then the primary is SIGKILLed while the
    third answer is being written; that answer still reaches the user and, after the failover, the
    chat, and the fourth turn goes to the promoted replica (sent again if refused meanwhile)."""
    primary, replica, sentinels = sentinel_group(nodes)
    settings = sentinel_settings(sentinels, tmp_path, redis_wait_replicas=1, redis_wait_ms=500)
    store = ChatStore.for_app(settings, RedisTarget.from_settings(settings))
    journal = Journal(settings.journal_dir, 100)
    service = ChatService(engine, store, settings, journal=journal)
    chat_id = service.new_chat("explain", "beginner")
    finished = [(q, answer(service, chat_id, q)) for q in QUESTIONS[:2]]
    assert len(journal) == 0, "answers the replica acknowledged are not journaled"
    assert stored_turns(replica, chat_id) == as_messages(finished), "the replica has both turns"

    replies = service.send(chat_id, QUESTIONS[2], TurnOptions(max_new_tokens=40))
    for first in replies:  # the kill comes well into the answer, so that its save meets the failover
        if first.done or engine.count_tokens(first.text) >= 24:
            break
    primary.kill()
    killed = time.monotonic()
    promoted = watch_promotion(sentinels[0], replica, killed)
    *_, last = replies
    assert not first.done and last.done, "the primary died while the answer was being written, before its save"
    finished.append((QUESTIONS[2], last.text))
    saved_s = time.monotonic() - killed  # its save was tried then: before the promotion, it went to the journal

    reply, refused = answer_when_possible(service, chat_id, QUESTIONS[3], timeout=30)
    finished.append((QUESTIONS[3], reply))
    promoted.join(30)
    journal.replay(store)  # what the app's background loop does every 5 s
    print(
        f"\nfailover: the third answer was saved {saved_s:.2f} s after the kill, Sentinel promoted the replica "
        f"after {promoted.seconds:.2f} s; the fourth turn was refused {refused} time(s), answered after "
        f"{time.monotonic() - killed:.2f} s"
    )
    assert promoted.seconds < 30, "Sentinel promoted the replica"
    assert replica.client().info("replication")["role"] == "master"
    assert stored_turns(replica, chat_id) == as_messages(finished), "every finished turn, in order, once"
    assert len(journal) == 0


def test_an_answer_no_replica_acknowledged_in_time_is_also_kept_in_the_journal(
    engine: LocalEngine, nodes: Nodes, tmp_path: Path
) -> None:
    """With the replica stopped (SIGSTOP), WAIT times out: the saved answer (and its question) waits in
    the journal too, and writing it later adds nothing twice. With the replica running, nothing does."""
    primary = nodes.server("primary")
    replica = nodes.replica_of("replica", primary)
    settings = make_settings(primary.url, redis_wait_replicas=1, redis_wait_ms=300, verify_enabled=False,
                             max_new_tokens=8, journal_dir=str(tmp_path / "journal"))  # fmt: skip
    store = ChatStore.for_app(settings, RedisTarget.from_settings(settings))
    journal = Journal(settings.journal_dir, 100)
    service = ChatService(engine, store, settings, journal=journal)
    chat_id = service.new_chat("explain", "beginner")
    finished = [(QUESTIONS[0], answer(service, chat_id, QUESTIONS[0]))]
    assert len(journal) == 0
    replica.signal(signal.SIGSTOP)
    try:
        finished.append((QUESTIONS[1], answer(service, chat_id, QUESTIONS[1])))
        entries = [json.loads(path.read_text()) for path in settings.journal_dir.glob("*.json")]
        assert [(e["question"]["content"], e["message"]["content"]) for e in entries] == [finished[1]]
        assert stored_turns(primary, chat_id) == as_messages(finished), "the answer is saved all the same"
    finally:
        replica.signal(signal.SIGCONT)
    assert journal.replay(store) == 1
    assert stored_turns(primary, chat_id) == as_messages(finished), "nothing is written twice"
    wait_until(lambda: stored_turns(replica, chat_id) == as_messages(finished), 10, "the replica catching up")


def test_a_turn_a_failover_lost_comes_back_whole_and_in_order(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    """The promoted replica may lack the question as well as the answer: replay writes both, and only
    what is missing."""
    store = ChatStore.from_url(redis_server.url, 3600)
    journal = Journal(tmp_path / "journal", 10)
    lost, kept = store.create("write", "beginner"), store.create("write", "beginner")
    q1, a1 = {"role": "user", "content": "q1", "at": 1.0}, {"role": "assistant", "content": "a1", "at": 2.0}
    q2, a2 = {"role": "user", "content": "q2", "at": 3.0}, {"role": "assistant", "content": "a2", "at": 4.0}
    for chat_id in (lost, kept):
        store.append(chat_id, q1)
        store.append(chat_id, a1)
    store.append(kept, q2)  # this replica got the question before the primary died, not the answer
    for chat_id in (lost, kept):
        assert journal.add(chat_id, a2, q2)
    assert journal.replay(store) == 2
    for chat_id in (lost, kept):
        assert [m["content"] for m in store.messages(chat_id)] == ["q1", "a1", "q2", "a2"]


def test_the_store_works_on_a_redis_cluster(nodes: Nodes) -> None:
    """Three masters; a chat's keys share one slot, chats spread over the nodes, and every operation
    (scripts, the two-step share and owner writes, listing across nodes) works."""
    masters = [nodes.cluster_node(f"node-{n}") for n in range(3)]
    form_cluster(masters)
    store = ChatStore.open(RedisTarget(url=masters[1].url, cluster=True), 3600, wait_replicas=0)
    assert store.cluster
    chats = [store.create("debug", "expert", owner=ME) for _ in range(12)]  # all on one node: 1 in 177,000
    for chat_id in chats:
        assert len({store.client.keyslot(key) for key in chat_keys(chat_id)}) == 1
    holders = {store.client.get_node_from_key(chat_keys(c)[0]).port for c in chats}
    assert len(holders) >= 2, "the chats are spread over several nodes"

    chat_id = chats[0]
    store.append(chat_id, {"role": "user", "content": "why?"}, title="why?")
    assert store.append_replicated(chat_id, {"role": "assistant", "content": "because", "at": 1.0})
    assert not ChatStore(store.client, 3600, wait_replicas=1, wait_ms=50).append_replicated(
        chat_id, {"role": "user", "content": "no replica has this", "at": 2.0}
    ), "a cluster without replicas acknowledges nothing"
    store.update(chat_id, title="Why")
    store.mark_answering(chat_id, 30)
    assert store.answering(chat_id)
    meta, messages = store.chat(chat_id)
    assert meta["title"] == "Why" and [m["content"] for m in messages] == ["why?", "because", "no replica has this"]
    token = store.share(chat_id)
    assert store.share(chat_id) == token and store.shared_chat(token) == chat_id
    other = "p" * 43
    store.adopt(other, chat_id)
    assert [c["id"] for c in store.owned_chats(other)] == [chat_id]
    assert {c["id"] for c in store.owned_chats(ME)} == set(chats)
    store.delete(chat_id)
    with pytest.raises(ChatNotFound):
        store.shared_chat(token)
    assert store.client.exists(f"chmocoder:share:{token}", *chat_keys(chat_id)) == 0
    assert {c["id"] for c in store.owned_chats(ME)} == set(chats[1:]), "a deleted chat leaves the list"


def test_a_share_link_whose_chat_is_gone_opens_nothing(redis_server: EmbeddedRedis) -> None:
    """The share key is written apart from the chat (another slot), so it can outlive it: the chat's own
    `share` field decides."""
    store = ChatStore.from_url(redis_server.url, 3600)
    chat_id = store.create("write", "beginner", owner=ME)
    token = store.share(chat_id)
    store.client.delete(*chat_keys(chat_id))  # the chat expired; its share key did not
    with pytest.raises(ChatNotFound):
        store.shared_chat(token)
    again = store.create("write", "beginner", owner=ME)
    store.client.set(f"chmocoder:share:{token}", again)  # a stale key pointing at a chat never shared
    with pytest.raises(ChatNotFound):
        store.shared_chat(token)


def write_old_chat(client: Any, chat_id: str, ttl: int, share: str = "", answering: bool = False) -> None:
    """A chat as versions before hash tags wrote it."""
    meta = {"created": "100.0", "updated": "200.0", "task": "debug", "level": "expert", "title": "old one",
            "creator": owner_key(ME)} | ({"share": share} if share else {})  # fmt: skip
    client.hset(f"chmocoder:chat:{chat_id}", mapping=meta)
    client.rpush(f"chmocoder:chat:{chat_id}:messages", json.dumps({"role": "user", "content": f"{chat_id} q"}),
                 json.dumps({"role": "assistant", "content": f"{chat_id} a"}))  # fmt: skip
    client.sadd(owner_key(ME), chat_id)
    if share:
        client.set(f"chmocoder:share:{share}", chat_id)
    if answering:
        client.set(f"chmocoder:chat:{chat_id}:answering", "1")
    for key in [*client.keys(f"chmocoder:chat:{chat_id}*"), owner_key(ME), f"chmocoder:share:{share}"]:
        client.expire(key, ttl)


def test_chats_under_the_old_key_layout_are_moved_and_nothing_is_lost(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    try:
        raw = ChatStore.from_url(redis.url, 86400).client
        first, second, late, at_start = ("A" * 32, "B" * 32, "C" * 32, "D" * 32)
        write_old_chat(raw, first, 5000, share="S" * 32)
        write_old_chat(raw, second, 5000, answering=True)
        store = ChatStore.from_url(redis.url, 86400)
        assert store.migrate_old_keys() == 5, "two chats' meta and messages, and one lease"
        assert all("{" in key for key in raw.keys("chmocoder:chat:*")), "no key is left under the old names"
        assert 4900 < raw.ttl(chat_keys(first)[1]) <= 5000, "a moved chat expires when it would have"
        assert store.migrate_old_keys() == 0, "running it again changes nothing"
        meta, messages = store.chat(first)
        assert meta["title"] == "old one" and [m["content"] for m in messages] == [f"{first} q", f"{first} a"]
        assert store.shared_chat("S" * 32) == first and store.answering(second)
        assert store.created_by(ME, first, meta)

        write_old_chat(raw, late, 5000)  # an older replica, still running during a rolling update
        assert {c["id"] for c in store.owned_chats(ME)} == {first, second, late}, "found when listed"
        assert [m["content"] for m in store.messages(late)] == [f"{late} q", f"{late} a"]

        write_old_chat(raw, at_start, 5000)
        settings = make_settings(redis.url)
        ChatStore.for_app(settings, RedisTarget.from_settings(settings))  # moves them in the background
        wait_until(lambda: raw.get("chmocoder:layout") == "hash-tagged", 10, "the migration at start")
        assert raw.exists(chat_keys(at_start)[0]) and not raw.exists(f"chmocoder:chat:{at_start}")
    finally:
        redis.stop()


def test_the_app_behind_sentinel_keeps_chats_and_rate_limits_on_the_primary(
    nodes: Nodes, start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """create_app wired to Sentinel: no embedded Redis, chats and `limits`' counts on the primary."""
    primary, replica, sentinels = sentinel_group(nodes)
    server = start_server(
        "", redis_sentinels=",".join(f"127.0.0.1:{s.port}" for s in sentinels), redis_sentinel_service=SERVICE,
        rate_limit="3/minute", data_dir=str(tmp_path / "no-embedded-redis"),
    )  # fmt: skip
    assert httpx.get(server.url + "readyz").status_code == 200
    created = httpx.post(server.url + "api/chats", json={"task": "write", "level": "expert"})
    assert created.status_code == 201, created.text
    chat_id = created.json()["id"]
    assert primary.client().exists(chat_keys(chat_id)[0])
    codes = [httpx.get(server.url + f"api/chats/{chat_id}").status_code for _ in range(3)]
    assert codes == [200, 200, 429], "the fourth counted request is over the limit"
    assert primary.client().keys("chmocoder:limits*"), "the counts live on the primary"
    assert not (tmp_path / "no-embedded-redis").exists(), "no embedded Redis was started"

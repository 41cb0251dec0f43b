"""Warm, single-use sandbox workers: each is a Deno process with Pyodide loaded, waiting for one run.

Loading Pyodide takes seconds, running code then takes milliseconds, so a few workers are kept
loaded. Each serves one run and is then killed, so one user's code never sees another's. The
parent enforces the limits: it kills a worker at the time limit or when its resident memory (read
from /proc every 50 ms) passes the memory limit. WebAssembly memory is also capped at the memory
limit inside V8 (a MemoryError for the program), which bounds a fast allocation between two polls;
where there is no /proc (macOS), that cap and WebAssembly's own 4 GB ceiling are the only bounds.
"""

from __future__ import annotations

import json
import logging
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PYODIDE_DIR = HERE / "node_modules" / "pyodide"
# The only files Deno may read: what loadPyodide opens at run time (pyodide.asm.js and this
# directory's worker.mjs and deno.json are loaded as modules and config, which needs no permission).
PYODIDE_FILES = ("pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
WORKER = HERE / "worker.mjs"
CONFIG = HERE / "deno.json"
READY_TIMEOUT_S = 60.0
POLL_S = 0.05
HEAP_MB = 128  # V8's JavaScript heap; Python's memory is WebAssembly memory, capped separately
EVENTS_CHARS = 200_000  # what a run may report with chmocoder_sandbox.emit, in total
STDERR_KEPT = 4000  # Deno's own error output kept to explain a failed start


@dataclass
class RunResult:
    """What a run did. `status`: ok, error (nonzero exit), timeout, memory, output (limit hit), unavailable.
    `exit_code` is None when a limit stopped the run; `message` says which, in a sentence for users."""

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


def deno_command(deno: str, memory_mb: int) -> list[str]:
    """Deno with no permission but reading Pyodide's files, nothing fetched, no prompt."""
    readable = ",".join(str(PYODIDE_DIR / name) for name in PYODIDE_FILES)
    v8 = f"--max-old-space-size={HEAP_MB},--wasm-max-mem-pages={memory_mb * 16}"  # 64 KiB pages
    return [
        deno, "run", "--no-prompt", "--cached-only", f"--config={CONFIG}", f"--allow-read={readable}",
        f"--v8-flags={v8}", str(WORKER),
    ]  # fmt: skip


def scrubbed_environment(home: Path) -> dict[str, str]:
    """Only what Deno needs: the app's own variables (API keys, Redis passwords) never reach it."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "DENO_DIR": str(home / "deno"),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }


def parse_line(raw: bytes) -> dict[str, Any]:
    """One protocol message. Anything else the process wrote to its stdout counts as output."""
    text = raw.decode("utf-8", "replace")
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        return {"event": "out", "stream": "stdout", "text": text}
    return without_lone_surrogates(message, text)


def without_lone_surrogates(value: Any, source: str) -> Any:
    """JSON may spell a lone surrogate (\\ud800), which would break every encoder downstream."""
    if "\\ud" not in source.lower():
        return value
    return json.loads(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8"))


class Worker:
    """One Deno process: started, loaded (ready), then given exactly one job."""

    def __init__(self, deno: str, home: Path, memory_mb: int, max_line: int) -> None:
        self.process = subprocess.Popen(
            deno_command(deno, memory_mb), cwd=HERE, env=scrubbed_environment(home), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read_stdout, args=(max_line,), daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self, max_line: int) -> None:
        """Lines are read with a bound: a program writing one endless line cannot fill our memory."""
        stream: IO[bytes] = self.process.stdout  # type: ignore[assignment]
        while raw := stream.readline(max_line):
            if len(raw) >= max_line and not raw.endswith(b"\n"):
                self.messages.put({"event": "overflow"})
                break  # the run is cut; the worker is killed, which ends the writer
            self.messages.put(parse_line(raw))
        self.messages.put(None)

    def _read_stderr(self) -> None:
        stream: IO[bytes] = self.process.stderr  # type: ignore[assignment]
        while raw := stream.readline(STDERR_KEPT):
            if sum(len(e) for e in self.errors) < STDERR_KEPT:
                self.errors.append(raw.decode("utf-8", "replace"))

    def error_text(self) -> str:
        """What Deno itself wrote to stderr, once the process has ended (Pyodide's output is on stdout)."""
        self._stderr_reader.join(timeout=1.0)
        return "".join(self.errors)

    def wait_ready(self, timeout: float) -> str:
        """'' once Pyodide is loaded, else why the worker could not start."""
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return f"Deno did not load Pyodide within {timeout:.0f} s"
        if message is not None and message.get("event") == "ready":
            return ""
        self.kill()
        detail = self.error_text().strip().splitlines()
        return "Deno could not load Pyodide" + (f" ({detail[-1][:300]})" if detail else "")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Collector:
    """What one run has reported so far, bounded whatever the worker sends."""

    def __init__(self, output_chars: int, on_event: Callable[[dict[str, Any]], None] | None) -> None:
        self.output_chars = output_chars
        self.on_event = on_event
        self.output: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.used = 0
        self.events: list[dict[str, Any]] = []
        self.events_used = 0

    def take(self, message: dict[str, Any]) -> str | None:
        """Record one message; returns the limit it broke ("output"), or None."""
        kind = message.get("event")
        if kind == "out":
            text = str(message.get("text", ""))
            kept = text[: max(self.output_chars - self.used, 0)]
            self.used += len(kept)
            self.output["stderr" if message.get("stream") == "stderr" else "stdout"].append(kept)
            return "output" if len(kept) < len(text) else None
        if kind == "emit":
            data = str(message.get("data", ""))
            self.events_used += len(data)
            if self.events_used > EVENTS_CHARS:
                return "events"
            self.events.append(as_event(data))
            if self.on_event is not None:
                self.on_event(self.events[-1])
        return "output" if kind == "overflow" else None

    def result(self, status: str, exit_code: int | None, started: float, message: str = "") -> RunResult:
        stdout, stderr = "".join(self.output["stdout"]), "".join(self.output["stderr"])
        return RunResult(stdout, stderr, exit_code, status, time.monotonic() - started, self.events, message)


def as_event(data: str) -> dict[str, Any]:
    """An emitted JSON object as a dict; anything else is kept under "data"."""
    try:
        value = without_lone_surrogates(json.loads(data), data)
    except ValueError:
        return {"data": data}
    return value if isinstance(value, dict) else {"data": value}


def collect(
    worker: Worker,
    code: str,
    time_limit_s: float,
    memory_mb: int,
    output_chars: int,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Give the worker its job and gather what it reports until it is done or a limit stops it;
    `on_event` hears each event the program emits as it comes. The worker is killed in any case."""
    assert worker.process.stdin is not None
    started = time.monotonic()
    job = {"code": code, "output_limit": output_chars, "events_limit": EVENTS_CHARS}
    seen = Collector(output_chars, on_event)
    limits = {
        "timeout": f"stopped after {time_limit_s:g} s (the time limit)",
        "memory": f"stopped at {memory_mb} MB of memory (the memory limit)",
        "output": f"output cut at {output_chars:,} characters (the output limit)",
        "events": f"stopped after reporting more than {EVENTS_CHARS:,} characters of results (the output limit)",
    }
    try:
        worker.process.stdin.write(json.dumps(job).encode())
        worker.process.stdin.close()
        outcome = _watch(worker, seen, started + time_limit_s, memory_mb)
    except (OSError, ValueError):  # the worker died before it took the job
        outcome = "gone", None
    finally:
        worker.kill()
    status, exit_code = outcome
    if status in limits:
        return seen.result("output" if status == "events" else status, None, started, limits[status])
    if status == "gone":
        return _gone(worker, seen, started)
    return seen.result("ok" if exit_code == 0 else "error", exit_code, started)


def _gone(worker: Worker, seen: Collector, started: float) -> RunResult:
    """The worker ended without reporting the end of the run: the program ended the process itself
    (js.Deno.exit), waited on nothing, or Deno failed or was killed."""
    errors, code = worker.error_text(), worker.process.returncode
    if "promise never resolved" in errors:  # Deno ends a process that has nothing left to run
        why = "the program waited for something that can never happen (nothing else was left to run)"
        seen.output["stderr"].append(why + "\n")
        return seen.result("error", 1, started, why)
    if not errors and code is not None and code >= 0:
        return seen.result("ok" if code == 0 else "error", code, started)
    seen.output["stderr"].append(errors[-2000:])
    return seen.result("error", None, started, "the sandbox ended unexpectedly")


def _watch(worker: Worker, seen: Collector, deadline: float, memory_mb: int) -> tuple[str, int | None]:
    """Wait for the run to end: ("done", exit code), a limit's name, or ("gone", None)."""
    next_poll = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            return "timeout", None
        if now >= next_poll:
            next_poll = now + POLL_S
            used = rss_mb(worker.process.pid)
            if used is not None and used > memory_mb:
                return "memory", None
        try:
            message = worker.messages.get(timeout=max(min(POLL_S, deadline - now), 0.001))
        except queue.Empty:
            continue
        if message is None:
            return "gone", None
        if message.get("event") == "done":
            if message.get("limit") in ("output", "events", "memory"):
                return str(message["limit"]), None
            exit_code = message.get("exit")
            return "done", exit_code if isinstance(exit_code, int) else 1
        broken = seen.take(message)
        if broken:
            return broken, None


def private_home() -> Path:
    """A directory of the sandbox's own for Deno's HOME and cache, never the app's."""
    return Path(tempfile.mkdtemp(prefix="chmocoder-sandbox-"))

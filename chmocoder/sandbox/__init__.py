"""Run untrusted Python safely, anywhere the app runs: CPython in WebAssembly (Pyodide) inside Deno.

Deno is given no permission but reading Pyodide's own files: no network, no host files, no
environment variables, no other programs; the parent stops a run at the time, memory and output
limits. It needs no privileges, so it works on a laptop, as the Docker image's non-root user, on a
Hugging Face Space and in a restricted Kubernetes pod. If it cannot start, it says why
(`available`, `reason`) and runs nothing: code is never run outside it.
"""

from __future__ import annotations

import logging
import queue
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .pool import EVENTS_CHARS, PYODIDE_DIR, READY_TIMEOUT_S, RunResult, Worker, collect, private_home

__all__ = ["RunResult", "Sandbox", "find_deno"]

log = logging.getLogger(__name__)
WAIT_FOR_WORKER_S = 30.0
START_ATTEMPTS = 2  # a worker that fails to load is tried once more before the sandbox turns off
NOT_STARTED = "the code sandbox has not been started"


def find_deno() -> str | None:
    """The `deno` binary: from the `deno` wheel, beside this Python, or on PATH."""
    try:
        import deno  # type: ignore[import-untyped]

        return str(deno.find_deno_bin())
    except (ImportError, FileNotFoundError, RuntimeError):
        pass
    beside = Path(sys.executable).parent / "deno"
    return str(beside) if beside.exists() else shutil.which("deno")


class Sandbox:
    """A pool of warm, single-use sandbox workers. Thread-safe; `run` blocks, so call it from a
    worker thread, never on the event loop."""

    def __init__(
        self,
        *,
        workers: int,
        time_limit_s: float,
        memory_mb: int,
        output_chars: int,
        enabled: bool = True,
        deno_path: str | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.time_limit_s = time_limit_s
        self.memory_mb = memory_mb
        self.output_chars = output_chars
        self.enabled = enabled
        self.deno = deno_path if deno_path is not None else find_deno()
        # The longest line a worker may send: its whole output or its reports, JSON-escaped.
        self._max_line = 6 * max(output_chars, EVENTS_CHARS) + 1024
        self._ready: queue.Queue[Worker] = queue.Queue()
        self._reason = NOT_STARTED
        self._closed = False
        self._started = threading.Event()
        self._home: Path | None = None

    @property
    def available(self) -> bool:
        """False if Deno or Pyodide is missing, a worker failed to start, or the sandbox is closed."""
        return not self._reason and not self._closed

    @property
    def reason(self) -> str:
        """Why the sandbox is off, one sentence fit for a user ('' when it is on)."""
        return "the code sandbox is closed" if self._closed and not self._reason else self._reason

    @property
    def starting(self) -> bool:
        """True until the first worker has loaded or the sandbox has turned out to be off."""
        return not self._started.is_set()

    @property
    def ready_workers(self) -> int:
        """Workers loaded and waiting for a run."""
        return self._ready.qsize()

    def start(self) -> Sandbox:
        """Check what the sandbox needs and load the warm workers in the background; never raises."""
        if self._reason != NOT_STARTED:
            return self
        self._reason = self._missing()
        if self._reason:
            log.warning("%s", self._reason)
            self._started.set()
            return self
        self._home = private_home()
        # Removed on close(), and also when the sandbox is dropped or the app exits without closing it.
        weakref.finalize(self, shutil.rmtree, self._home, True)
        for _ in range(self.workers):
            threading.Thread(target=self._add_worker, daemon=True).start()
        return self

    def _missing(self) -> str:
        if not self.enabled:
            return "the code sandbox is turned off (CHMOCODER_SANDBOX_ENABLED=false)"
        if not self.deno or not Path(self.deno).exists():
            return "the code sandbox is off: Deno is not installed (run scripts/setup.sh)"
        if not (PYODIDE_DIR / "package.json").exists():
            return "the code sandbox is off: Pyodide is not installed (run scripts/setup.sh)"
        return ""

    def _add_worker(self) -> None:
        """Start one worker and, once it has loaded Pyodide, make it available for a run."""
        problem = ""
        for _ in range(START_ATTEMPTS):
            if self._closed:
                return
            assert self.deno is not None and self._home is not None
            try:
                worker = Worker(self.deno, self._home, self.memory_mb, self._max_line)
            except OSError as exc:
                problem = f"Deno could not be started ({exc})"
                continue
            problem = worker.wait_ready(READY_TIMEOUT_S)
            if not problem:
                break
        if problem:
            self._fail(f"the code sandbox is off: {problem}")
            return
        self._ready.put(worker)
        if self._closed:  # close() may have emptied the queue before this worker was put in it
            self._drain()
        self._started.set()

    def _fail(self, reason: str) -> None:
        if not self._reason and not self._closed:  # logged once; a worker cut short by close() is no news
            log.error("%s", reason)
            self._reason = reason
        self._started.set()

    def wait_ready(self, timeout: float) -> bool:
        """Block until a worker is loaded (or the sandbox turned out to be off); True if it is on."""
        self._started.wait(timeout)
        return self.available and not self._ready.empty()

    def run(
        self,
        code: str,
        time_limit_s: float | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunResult:
        """Run `code` as a program in a fresh interpreter; never raises for anything the code does.
        The program reports results live with `chmocoder_sandbox.emit(json_text)`; `on_event` hears them."""
        worker = self._take_worker()
        if worker is None:
            return RunResult("", "", None, "unavailable", 0.0, message=self.reason or "the code sandbox is busy")
        threading.Thread(target=self._add_worker, daemon=True).start()  # replace it for the next run
        limit = self.time_limit_s if time_limit_s is None else time_limit_s
        return collect(worker, code, limit, self.memory_mb, self.output_chars, on_event)

    def _take_worker(self) -> Worker | None:
        """A loaded worker, waiting a bounded time for one; None if the sandbox is (or turns) off."""
        deadline = time.monotonic() + WAIT_FOR_WORKER_S
        while self.available and time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.25)
            except queue.Empty:
                continue
        return None

    def close(self) -> None:
        """Stop every loaded worker; runs in progress finish on their own worker."""
        self._closed = True
        self._drain()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)

    def _drain(self) -> None:
        while True:
            try:
                self._ready.get_nowait().kill()
            except queue.Empty:
                return

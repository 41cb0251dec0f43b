"""Stopping without losing answers: what SIGTERM (a rolling update, Ctrl-C) and Kubernetes' preStop do.

uvicorn's own stop waited 3 s for open connections and exited, dropping every answer being written.
Here a stop first turns /readyz to 503 and refuses new turns; answers under way get the grace period
to finish; those still running then are stopped at the next token and saved as stopped; and the
process exits without waiting any longer on connections that stay open by design (a browser's queue
stream). SIGUSR1, sent by the preStop step, only turns /readyz to 503, so that the Service stops
sending users here before SIGTERM arrives.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

# After the grace period: how long the model has to stop and the answers to be saved.
STOP_WAIT_S = 5.0


class GracefulServer(uvicorn.Server):
    def __init__(self, app: FastAPI, config: uvicorn.Config, grace_s: float) -> None:
        config.timeout_graceful_shutdown = int(grace_s + STOP_WAIT_S + 5)  # a backstop; the drain ends first
        super().__init__(config)
        self.chmocoder = app
        self.grace_s = grace_s
        self._draining = threading.Event()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if not self._draining.is_set():
            self._draining.set()
            log.info("signal %s: shutting down gracefully (grace period %.0f s)", sig, self.grace_s)
            self.chmocoder.state.ready.clear()
            threading.Thread(target=self._drain, name="chmocoder-shutdown", daemon=True).start()

    def _drain(self) -> None:
        try:
            self.chmocoder.state.service.shut_down(self.grace_s, STOP_WAIT_S)
        finally:
            self.force_exit = True  # every answer is saved: stop waiting on idle streams

    def run_until_stopped(self) -> None:
        """Serve until a stop signal; capture_signals releases what the app holds on the way out."""
        signal.signal(signal.SIGUSR1, self._not_ready)
        self.run()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Wraps all of uvicorn's serving, so its end is where the app's holdings are released (the
        lifespan's shutdown is skipped when the drain ends the wait early; close() is idempotent).
        Not after: uvicorn then raises the stop signal again with its default handler, and the process
        dies right there (the embedded Redis was left running after every stop)."""
        with super().capture_signals():
            try:
                yield
            finally:
                self.chmocoder.state.close()

    def _not_ready(self, sig: int, frame: FrameType | None) -> None:
        log.info("signal %s: /readyz now answers 503 (the pod is leaving)", sig)
        self.chmocoder.state.ready.clear()

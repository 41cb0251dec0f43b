"""The app factory: wires settings → model, Redis, chat service → FastAPI with the Gradio UI mounted."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import gradio as gr
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, gradio_internals
from .access import AccessPolicy, login_router
from .admission import ModelAdmission
from .api import build_download_router, build_router
from .body_limit import BodyLimit
from .chat import ChatService
from .client_api import MODEL_QUEUE, SANDBOX_QUEUE
from .engine import Engine
from .journal import Journal, keep_replaying
from .kv_cache import KVCache
from .library import ChatLibrary
from .local_engine import LocalEngine
from .metrics import REQUESTS, watch_queue, watch_sequences
from .model_files import resolve_model
from .openai_api import build_openai_router
from .practice import PracticeCoach
from .rate_limits import RateLimits
from .redis_client import RedisTarget
from .redis_server import EmbeddedRedis
from .remote_engine import RemoteEngine
from .runner import CodeRunner
from .sandbox import Sandbox
from .security_headers import SecurityHeaders
from .settings import Settings
from .store import ChatStore, StoreError
from .ui import CSS, HEAD, I18N, build_ui
from .verify import Verifier

log = logging.getLogger(__name__)


class RequestCounter:
    """Counts HTTP requests by surface and status class. A plain ASGI middleware: the decorator kind
    (BaseHTTPMiddleware) re-streams every response body, which slows each streamed token."""

    SURFACES = ("/api", "/v1", "/download", "/gradio_api")

    def __init__(self, app: ASGIApp, root_path: str = "") -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).removeprefix(self.root_path)
        surface = next((s.strip("/") for s in self.SURFACES if path.startswith(s)), "other")

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                REQUESTS.labels(surface, f"{message['status'] // 100}xx").inc()
            await send(message)

        await self.app(scope, receive, counting_send)


# How often answers waiting in the journal are offered to Redis again.
JOURNAL_REPLAY_S = 5.0
# How often Gradio's queue looks for work when it has none (its own default is every 1 ms).
IDLE_POLL_S = 0.004
BUSY_POLL_S = 0.02
PROGRESS_POLL_S = 0.1


def poll_queue_by_model_state(queue: gradio_internals.Queue, engine: Engine) -> None:
    """While the model generates, frequent queue wake-ups pre-empt llama.cpp's busy threads (1 ms
    polling cost about 5% of its speed on 2 cores), and a request arriving then waits for the model
    anyway: poll every 20 ms. While the model is idle, poll every 4 ms so that a request starts at
    once (1.2% of a core when idle, against 3.9% at Gradio's 1 ms)."""

    def on_busy(busy: bool) -> None:
        gradio_internals.set_polling(queue, BUSY_POLL_S if busy else IDLE_POLL_S, PROGRESS_POLL_S)

    on_busy(False)
    engine.on_busy = on_busy


def busy_message(group: str) -> str:
    what = "the model" if group == MODEL_QUEUE else "the code sandbox"
    return f"{what} is busy and its queue is full; try again in a moment"


def start_queue(demo: gr.Blocks, engine: Engine, admission: ModelAdmission) -> None:
    """Gradio's queue, with its limit on waiting requests applied to the model's group (shared with
    /v1's waiting requests) and the sandbox's: reads and chat-list changes are never refused."""
    demo.queue(max_size=None, default_concurrency_limit=1)
    queue = gradio_internals.check(demo)
    admission.queued = lambda: gradio_internals.waiting(queue, MODEL_QUEUE)
    limits = {
        MODEL_QUEUE: lambda: admission.full(),
        SANDBOX_QUEUE: lambda: gradio_internals.waiting(queue, SANDBOX_QUEUE) >= admission.limit,
    }
    gradio_internals.limit_waiting(queue, limits, busy_message)
    gradio_internals.order_fairly(queue, MODEL_QUEUE)
    poll_queue_by_model_state(queue, engine)
    if isinstance(engine, LocalEngine):
        watch_sequences(engine.busy_sequences)
    watch_queue(admission.waiting)


def public_model_id(model: str) -> str:
    """The model's name for /v1 clients: a catalog name or Hub reference as given, a local file by its
    name only (its absolute path says how the server's disk is laid out)."""
    return Path(model).name if Path(model).expanduser().is_file() else model


def add_operations_routes(
    app: FastAPI, engine: Engine, store: ChatStore, sandbox: Sandbox, ready: threading.Event
) -> None:
    """/healthz, /readyz and /metrics: what an orchestrator and a monitoring system ask."""

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is alive. On the event loop, not in the thread pool: requests stuck on a hung
        Redis could fill the pool, and a liveness probe must not wait behind them."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """The model is loaded, Redis answers and the code sandbox has started: a replica given traffic
        while its first worker still loads would make the first runs wait (a run that had to wait for a
        worker loading beside a busy model waited 30 s). Being off (answers are then 'not checked')
        does not make the app unready; the sandbox is reported either way."""
        code = "on" if sandbox.available else f"off: {sandbox.reason}"
        if not ready.is_set():
            return JSONResponse({"status": "draining", "reason": "the server is shutting down"}, status_code=503)
        try:
            store.ping()
        except StoreError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc), "sandbox": code}, status_code=503)
        problem = engine.health()
        if problem is not None:
            return JSONResponse({"status": "unavailable", "reason": problem, "sandbox": code}, status_code=503)
        if sandbox.starting:
            return JSONResponse({"status": "starting", "reason": "the code sandbox is loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model": engine.name, "sandbox": code})

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics_endpoint() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def open_journal(settings: Settings, store: ChatStore) -> Journal:
    """The journal of unsaved answers, with what an earlier run left in it written to Redis now if it can be."""
    journal = Journal(settings.journal_dir, settings.journal_max_entries)
    if len(journal):
        try:
            journal.replay(store)
        except StoreError as exc:
            log.warning("%d unsaved answer(s) wait in the journal: %s", len(journal), exc)
    return journal


def open_engine(settings: Settings) -> Engine:
    """The model: a local GGUF file answering `parallel` chats at once, with per-chat KV states kept
    between turns, or, with CHMOCODER_ENGINE_URL, a remote OpenAI-compatible inference server."""
    if settings.engine_url:
        return RemoteEngine.from_settings(settings)
    model_path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    cache = KVCache(settings.kv_cache_mb * 2**20, settings.kv_cache_dir, settings.kv_cache_disk_mb * 2**20)
    return LocalEngine(
        model_path,
        n_ctx=settings.n_ctx,
        n_threads=settings.threads,
        n_batch=settings.n_batch,
        cache=cache,
        parallel=settings.parallel,
        per_party=settings.parallel_per_client,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a complete app. Loads the model and connects to (or starts) Redis before returning."""
    settings = settings or Settings()
    # The model's thread needs the GIL back after every llama.cpp call; with the default 5 ms switch
    # interval it waits behind the web server's threads and the answer streams measurably slower.
    sys.setswitchinterval(0.0005)
    engine = open_engine(settings)
    embedded = None if settings.redis_url or settings.redis_sentinels else EmbeddedRedis(settings.data_dir).start()
    redis_target = RedisTarget.from_settings(settings, embedded.url if embedded else "")
    store = ChatStore.for_app(settings, redis_target)
    sandbox = Sandbox(
        workers=settings.sandbox_workers,
        time_limit_s=settings.sandbox_time_limit_s,
        memory_mb=settings.sandbox_memory_mb,
        output_chars=settings.sandbox_output_chars,
        enabled=settings.sandbox_enabled,
    ).start()
    journal = open_journal(settings, store)
    service = ChatService(engine, store, settings, Verifier(sandbox), journal)
    runner = CodeRunner(sandbox, settings.max_code_chars)
    coach = PracticeCoach(service, Verifier(sandbox), runner)
    library = ChatLibrary(store)
    stop_replaying = threading.Event()
    keep_replaying(journal, store, JOURNAL_REPLAY_S, stop_replaying)
    closing = threading.Lock()
    closed = threading.Event()

    def close() -> None:
        """Release everything, once: answers still under way are stopped and saved first. A second
        caller (the lifespan's clean-up and the main thread's both call it) waits until it is done:
        returning at once let the process exit with the embedded Redis still running."""
        with closing:
            if closed.is_set():
                return
            closed.set()
            release()

    def release() -> None:
        service.shut_down(0.0)
        stop_replaying.set()
        sandbox.close()
        store.client.close()
        if embedded is not None:
            embedded.stop()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await anyio.to_thread.run_sync(close)

    app = FastAPI(title="ChMOCoder", version=__version__, lifespan=lifespan)
    app.state.close = close
    app.state.ready = threading.Event()
    app.state.ready.set()
    app.state.service = service
    app.state.library = library
    app.state.sandbox = sandbox
    app.state.settings = settings

    # Routes must be declared before Gradio is mounted at "/", which would shadow them.
    add_operations_routes(app, engine, store, sandbox, app.state.ready)
    admission = app.state.admission = ModelAdmission(settings.queue_max_size)
    app.include_router(build_router())
    app.include_router(build_download_router())
    app.include_router(build_openai_router(service, public_model_id(settings.model), admission))

    if settings.api_key:
        app.include_router(login_router(settings.api_key, settings.root_path, settings.session_hours * 3600))
    # The last added runs first: headers on every response, counting, rate limits (before the access
    # policy, so that guessing keys is limited too), the access policy, then the body limit.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, root_path=settings.root_path)
    app.add_middleware(
        AccessPolicy, api_key=settings.api_key, root_path=settings.root_path, open_paths=settings.open_path_list
    )
    if settings.rate_limit:
        app.add_middleware(
            RateLimits, redis=redis_target, per_client=settings.rate_limit,
            sign_in=settings.sign_in_limit, root_path=settings.root_path,
        )  # fmt: skip
    app.add_middleware(RequestCounter, root_path=settings.root_path)
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors_policy)

    demo = build_ui(service, library, settings, runner, coach)
    start_queue(demo, engine, admission)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        css=CSS,
        head=HEAD,
        i18n=I18N,
        footer_links=["api"],
        root_path=settings.root_path or None,
        max_file_size=settings.max_attachment_bytes,  # an attached file larger is refused as it uploads
    )

"""Real parts for every test: a private redis-server, the real test model, live app processes."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Isolate the Hugging Face cache before huggingface_hub is imported anywhere.
_HF_HOME = tempfile.mkdtemp(prefix="chmocoder-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# huggingface_hub reads HF_ENDPOINT once, at import: point it at the port the fake Hub will use.
HUB_PORT = _free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"

import pytest  # noqa: E402
import redis  # noqa: E402

from chmocoder.chat import ChatService  # noqa: E402
from chmocoder.library import ChatLibrary  # noqa: E402
from chmocoder.local_engine import LocalEngine  # noqa: E402
from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.sandbox import Sandbox  # noqa: E402
from chmocoder.settings import PROJECT_ROOT, Settings  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402

from .live_server import LiveServer  # noqa: E402

TEST_MODEL = "smollm2-135m-instruct-q4_1"
ARTIFACTS = PROJECT_ROOT / "artifacts"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture()
def redis_client(redis_server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)


def make_settings(redis_url: str, **overrides: object) -> Settings:
    """Test settings: the small model, deterministic answers, short answers to keep tests quick."""
    values: dict[str, object] = {
        "model": TEST_MODEL,
        "redis_url": redis_url,
        "n_ctx": 2048,
        "temperature": 0.0,
        "max_new_tokens": 48,
        "log_level": "INFO",
        "journal_dir": tempfile.mkdtemp(prefix="chmocoder-journal-"),
        "rate_limit": "100000/minute",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(redis_server: EmbeddedRedis) -> Settings:
    return make_settings(redis_server.url)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> LocalEngine:
    """One sequence, as the test apps have (see Launcher): with several, what a test's answers are
    depends on which cells earlier tests left in the shared KV buffer (LocalEngine's docstring).
    tests/test_batching.py, test_kv_cache.py and the load smoke test run several."""
    path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    return LocalEngine(path, n_ctx=settings.n_ctx, n_threads=settings.threads, n_batch=settings.n_batch, parallel=1)


@pytest.fixture()
def store(redis_server: EmbeddedRedis, settings: Settings) -> ChatStore:
    return ChatStore.from_url(redis_server.url, settings.chat_ttl_seconds)


@pytest.fixture()
def service(engine: LocalEngine, store: ChatStore, settings: Settings) -> ChatService:
    return ChatService(engine, store, settings)


@pytest.fixture()
def library(store: ChatStore) -> ChatLibrary:
    return ChatLibrary(store)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One real sandbox for the tests that run checks or hidden tests (test_sandbox.py has its own,
    started with secrets in the environment)."""
    box = Sandbox(workers=2, time_limit_s=5.0, memory_mb=512, output_chars=20_000).start()
    assert box.wait_ready(120), box.reason
    yield box
    box.close()


class Launcher:
    """Starts app processes with extra CHMOCODER_* settings and stops them all when its scope ends.

    Each app holds the model and two warm sandbox workers: kept to the end of the session, the dozens
    a full run starts took the last tests' cores (CI saw 5 s sandbox checks time out)."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.started: list[LiveServer] = []

    def start(self, redis_url: str, until: str = "readyz", **overrides: str) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHMOCODER_")}
        env.update(
            {
                "CHMOCODER_MODEL": TEST_MODEL,
                "CHMOCODER_REDIS_URL": redis_url,
                "CHMOCODER_PORT": str(free_port()),
                "CHMOCODER_N_CTX": "2048",
                "CHMOCODER_TEMPERATURE": "0",
                "CHMOCODER_MAX_NEW_TOKENS": "48",
                # One sequence unless a test asks for more: answers that do not depend on what the app
                # answered before, and a machine not loaded with every app's extra KV buffers.
                "CHMOCODER_PARALLEL": "1",
            }
        )
        env.update({f"CHMOCODER_{k.upper()}": v for k, v in overrides.items()})
        home = self.tmp_path_factory.mktemp("app")
        env.setdefault("CHMOCODER_JOURNAL_DIR", str(home / "journal"))
        env.setdefault("CHMOCODER_SHUTDOWN_GRACE_S", "2")  # a stop at the end of a test need not wait long
        env.setdefault("CHMOCODER_RATE_LIMIT", "100000/minute")  # counted, never reached by a test's own calls
        server = LiveServer(env, home / "app.log").start(until=until)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture()
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start app processes for one test; they are stopped when it ends."""
    launcher = Launcher(tmp_path_factory)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LiveServer]]:
    """Start app processes shared by a module's tests; they are stopped after its last test."""
    launcher = Launcher(tmp_path_factory)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[LiveServer]:
    """One shared app process for the tests that only read or add chats."""
    launcher = Launcher(tmp_path_factory)
    yield launcher.start(redis_server.url)
    launcher.stop_all()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell in teardown that a test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report

"""The remote engine against a real OpenAI-compatible inference server: llama-cpp-python's own
(`python -m llama_cpp.server`, the stand-in for vLLM here) serving the test model."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from chmocoder.engine import EngineError, GenerationParams, GenerationStats
from chmocoder.local_engine import LocalEngine
from chmocoder.redis_server import EmbeddedRedis, free_port, stop_process
from chmocoder.remote_engine import RemoteEngine

from .conftest import LiveServer

GREEDY = GenerationParams(max_tokens=60, temperature=0.0, top_p=1.0)
MESSAGES = [
    {"role": "system", "content": "You are a helpful Python tutor."},
    {"role": "user", "content": "Write a Python function is_even(n) that tells whether n is even."},
]


class InferenceServer:
    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--n_ctx", "2048", "--n_threads", "1", "--model_alias", "test-model"]
        self.process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.log = log
        for _ in range(600):
            assert self.process.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(log.read_text()[-2000:])

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


@pytest.fixture(scope="module")
def inference(engine: LocalEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceServer]:
    server = InferenceServer(engine.model_path, tmp_path_factory.mktemp("engine") / "server.log")
    yield server
    server.stop()


def read(batches: Iterator[list[str]]) -> str:
    return "".join(piece for batch in batches for piece in batch)


def test_the_remote_engine_streams_the_servers_answer(inference: InferenceServer, engine: LocalEngine) -> None:
    remote = RemoteEngine(inference.url, n_ctx=2048)
    assert remote.name == "test-model" and remote.n_ctx == 2048 and remote.health() is None
    prompt = remote.prompt_tokens(MESSAGES)
    local = engine.prompt_tokens(MESSAGES)
    # Counted with the server's tokenizer, plus a per-message allowance for its chat template: never
    # fewer tokens than the model really reads, so trimming never overfills the window.
    assert len(local) <= len(prompt) <= len(local) + 30, (len(prompt), len(local))
    stats = GenerationStats()
    text = read(remote.stream(prompt, GREEDY, stats))
    assert "is_even" in text, text
    assert stats.completion_tokens > 5 and stats.finish_reason in ("stop", "length")
    assert stats.first_token_at is not None and stats.finished_at is not None


def test_stop_closes_the_connection_and_the_server_moves_on(inference: InferenceServer) -> None:
    """The server answers one request at a time: had it gone on with the 3,000-token answer after
    Stop (~50 s on one thread), the next question would wait for it."""
    remote = RemoteEngine(inference.url, n_ctx=2048)
    long = [{"role": "user", "content": "Write the numbers from 1 to 2000, one per line, nothing else."}]
    stats = GenerationStats()
    with closing(remote.stream(remote.prompt_tokens(long), GenerationParams(3000, 0.0, 1.0), stats)) as stream:
        next(stream)
        next(stream)
    asked = time.monotonic()
    text = read(remote.stream(remote.prompt_tokens(MESSAGES), GenerationParams(8, 0.0, 1.0), GenerationStats()))
    assert text and time.monotonic() - asked < 15


def test_a_server_that_cannot_be_reached_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not answer /models"):
        RemoteEngine(f"http://127.0.0.1:{free_port()}/v1")


def test_the_app_answers_through_the_remote_engine_and_reports_its_health(
    inference: InferenceServer, start_server: Callable[..., LiveServer], redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """A replica with CHMOCODER_ENGINE_URL loads no model: it answers through the server, and its
    /readyz says when the server is gone."""
    app = start_server(redis_server.url, engine_url=inference.url, sandbox_enabled="false")
    assert "model loaded" not in app.log(), "no model is loaded in the app"
    assert httpx.get(app.url + "readyz").json()["model"] == "test-model"
    client = Client(app.url, verbose=False)
    chat = client.predict("write", "intermediate", api_name="/new_chat")
    answer = client.predict(chat, MESSAGES[1]["content"], None, None, 0.0, 40, api_name="/chat")
    assert "is_even" in answer
    history = client.predict(chat, api_name="/history")
    assert history[-1]["content"] == answer


def test_readyz_reports_an_inference_server_that_went_away(
    engine: LocalEngine, start_server: Callable[..., LiveServer], redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    server = InferenceServer(engine.model_path, tmp_path / "server.log")
    try:
        app = start_server(redis_server.url, engine_url=server.url, sandbox_enabled="false")
        assert httpx.get(app.url + "readyz").status_code == 200
    finally:
        server.stop()
    ready = httpx.get(app.url + "readyz", timeout=10)
    assert ready.status_code == 503 and "inference server" in ready.json()["reason"], ready.text

"""ChMOCoder liveness benchmark: how fast /healthz answers while the app is put under what once froze it.

    .venv/bin/python bench/probes.py                  # about 3 minutes on 2 cores (test model)
    .venv/bin/python bench/probes.py --model qwen2.5-coder-1.5b-instruct-q4_k_m

A fresh `python app.py` (127.0.0.1, a private redis-server) and, one after another:
- idle: nothing else happens;
- streaming: a /v1 answer of 400 tokens is being written (the model takes both cores);
- 1,000 messages: one /v1 request whose conversation must be fitted to the window (it froze the
  server for 29 s before the fitting was made linear and moved off the event loop);
- hung Redis: Redis is stopped (SIGSTOP) while 8 clients read chats over REST and /history; each
  read must fail clearly (503, "unreachable") within about 2 s (Redis's timeouts), not hang.
/healthz is probed every 0.1 s from this process throughout. Prints a Markdown table and writes
bench/results/<time>-probes-<model>.json. The target (issue: nothing frozen) is 100 ms at most.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import TEST_MODEL, Options, Probe, app_env  # noqa: E402
from bench.results import save  # noqa: E402
from bench.run import pct  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

PROBE_PERIOD_S = 0.1
IDLE_S = 10.0
HUNG_READERS = 8
HUNG_ROUNDS = 3  # reads per reader while Redis is stopped
TARGET_S = 0.1


def streaming(url: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": "Write a long essay about the history of Python."}],
            "max_tokens": 400, "temperature": 0, "stream": True}  # fmt: skip
    with httpx.stream("POST", url + "v1/chat/completions", json=body, timeout=300) as answer:
        chunks = sum(1 for line in answer.iter_lines() if line.startswith("data: "))
    return {"status": answer.status_code, "chunks": chunks}


def thousand_messages(url: str) -> dict[str, Any]:
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": f"note {i}: keep it short"} for i in range(999)]
    messages.append({"role": "user", "content": "Say OK."})
    body = {"messages": messages, "max_tokens": 4, "temperature": 0}
    answer = httpx.post(url + "v1/chat/completions", json=body, timeout=300)
    return {"status": answer.status_code, "prompt_tokens": answer.json().get("usage", {}).get("prompt_tokens")}


def hung_redis(url: str, redis: EmbeddedRedis) -> dict[str, Any]:
    """Stop Redis, read chats from several clients at once, and time how long each takes to be told."""
    chat = httpx.post(url + "api/chats", json={}, timeout=30).json()["id"]
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)

    def read(_: int) -> list[tuple[int, float]]:
        seen = []
        for _ in range(HUNG_ROUNDS):
            started = time.monotonic()
            status = httpx.get(url + f"api/chats/{chat}", timeout=120).status_code
            seen.append((status, time.monotonic() - started))
        return seen

    try:
        with ThreadPoolExecutor(HUNG_READERS) as pool:
            reads = [r for rs in pool.map(read, range(HUNG_READERS)) for r in rs]
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    times = [t for _, t in reads]
    return {"reads": len(reads), "statuses": sorted({s for s, _ in reads}),
            "read_p50_s": pct(times, 0.5), "read_max_s": max(times)}  # fmt: skip


def scenario(url: str, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` while /healthz is probed; the probe's latencies and what the work returned."""
    with Probe(url, PROBE_PERIOD_S) as probe:
        started = time.monotonic()
        result = work()
        wall = time.monotonic() - started
    lat = probe.latencies
    return {"scenario": name, "wall_s": wall, "probes": len(lat), "failures": probe.failures,
            "p50_s": pct(lat, 0.5), "p99_s": pct(lat, 0.99), "max_s": max(lat, default=float("nan")),
            "over_target": sum(t > TARGET_S for t in lat), "result": result}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| while | probes | /healthz p50 | p99 | max | over 100 ms | took | outcome |", "|---" * 8 + "|"]
    for r in rows:
        res = r["result"]
        outcome = ", ".join(f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}" for k, v in res.items())
        lines.append(
            f"| {r['scenario']} | {r['probes']} | {r['p50_s'] * 1000:.1f} ms | {r['p99_s'] * 1000:.1f} ms "
            f"| {r['max_s'] * 1000:.1f} ms | {r['over_target']} | {r['wall_s']:.1f} s | {outcome} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=TEST_MODEL, help="a catalog name (configs/models.toml)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chmocoder-probes-"))
    redis = EmbeddedRedis(workdir / "redis", port=free_port()).start()
    env = app_env(Options(model=args.model), redis.url, workdir)
    server = LiveServer(env, workdir / "app.log").start(timeout=600)
    try:
        url = server.url
        rows = [
            scenario(url, "idle", lambda: {"slept_s": time.sleep(IDLE_S) or IDLE_S}),
            scenario(url, "a 400-token answer streams", lambda: streaming(url)),
            scenario(url, "a 1,000-message /v1 request", lambda: thousand_messages(url)),
            scenario(url, f"Redis hung, {HUNG_READERS} readers", lambda: hung_redis(url, redis)),
        ]
    finally:
        server.stop()
        redis.stop()
    load = os.getloadavg()[0]
    text = (f"ChMOCoder liveness · model {args.model} · {len(os.sched_getaffinity(0))} CPUs · "
            f"/healthz every {PROBE_PERIOD_S:g} s · load (1 min) at the end {load:.1f}\n\n{table(rows)}")  # fmt: skip
    print(f"\n{text}")
    save({"model": args.model, "rows": rows, "report": text}, f"probes-{args.model}")


if __name__ == "__main__":
    main()

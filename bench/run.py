"""ChMOCoder benchmark: streaming cost, follow-up latency with interleaving chats, 16 users, memory.

    .venv/bin/python bench/run.py                      # the default model
    .venv/bin/python bench/run.py --model smollm2-135m-instruct-q4_1 --quick

Prints a table and writes bench/results/<time>-<model>.json. Everything runs on this machine:
a private redis-server, `python app.py` processes, and llama-cpp-python in this process for the
raw baseline (never at the same time as a server is generating).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import certifi  # noqa: E402
import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from llama_cpp import Llama  # noqa: E402
from openai import OpenAI  # noqa: E402

from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.prompts import system_prompt  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.settings import PROJECT_ROOT, Settings  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome, with tests.",
    "Explain the difference between a list and a tuple in Python, with examples.",
    "Write a JavaScript function that debounces another function, and explain it.",
]
FILLER_QUESTION = "Here is more of my code base; keep it in mind:\n```python\n{code}\n```"
FILLER_ANSWER = "Noted: {n} more functions. Ask when you are ready."
CODE_LINE = "def handler_{i}(request):\n    return process(request, retries={r})\n"


CLIENT_NICENESS = 10
TLS = ssl.create_default_context(cafile=certifi.where())
T = TypeVar("T")
LATENCY_ROUNDS = 5
LATENCY_TOKENS = 4


def conversation(prompt: str) -> list[dict[str, str]]:
    """The messages the app builds for a first question (task "write", level "intermediate")."""
    return [{"role": "system", "content": system_prompt("write", "intermediate")}, {"role": "user", "content": prompt}]


def lower_priority() -> None:
    """Clients stand in for users on other machines. gradio_client checks its job every 1 ms: at
    normal priority on these 2 cores that polling would take CPU from the model it is measuring."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CLIENT_NICENESS)


def as_client(work: Callable[[], T]) -> T:
    """Run `work` on a thread at client priority; the threads it starts inherit that priority."""
    with ThreadPoolExecutor(max_workers=1, initializer=lower_priority) as pool:
        return pool.submit(work).result()


def gradio_client(url: str) -> Client:
    # gradio_client builds a new httpx client per request; with a ready TLS context that costs
    # 0.5 ms instead of the 22 ms of loading the CA bundle (measured here), verification unchanged.
    return Client(url, verbose=False, ssl_verify=TLS)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def stream_stats(chunks: Iterator[str], started: float, count: Callable[[str], int]) -> dict[str, float]:
    """Time to first text and tokens/s after it, for a stream of growing or incremental text."""
    first = last = None
    text = ""
    for piece in chunks:
        if not piece:
            continue
        now = time.monotonic()
        first = first or now
        last = now
        text = piece
    tokens = count(text)
    assert first is not None and last is not None, "no text streamed"
    return {
        "ttft_s": first - started,
        "tokens": tokens,
        "tokens_per_s": (tokens - 1) / (last - first) if last > first else float("nan"),
    }


def accumulate(deltas: Iterator[str]) -> Iterator[str]:
    text = ""
    for delta in deltas:
        text += delta
        yield text


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings(model=args.model)
        self.model_path = resolve_model(args.model, self.settings.models_dir, self.settings.catalog_file)
        self.tokenizer = Llama(model_path=str(self.model_path), vocab_only=True, verbose=False)
        self.workdir = Path(tempfile.mkdtemp(prefix="chmocoder-bench-"))
        self.redis = EmbeddedRedis(self.workdir / "redis", port=free_port()).start()
        self.results: dict[str, Any] = {"model": args.model, "cpus": len(os.sched_getaffinity(0))}

    def count(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text.encode(), add_bos=False, special=False))

    def server(self, **overrides: str) -> LiveServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHMOCODER_")}
        env.update(
            CHMOCODER_MODEL=self.args.model,
            CHMOCODER_REDIS_URL=self.redis.url,
            CHMOCODER_PORT=str(free_port()),
            CHMOCODER_TEMPERATURE="0",
            CHMOCODER_LOG_LEVEL="WARNING",
        )
        env.update({f"CHMOCODER_{k.upper()}": v for k, v in overrides.items()})
        log = self.workdir / f"app-{len(list(self.workdir.glob('app-*')))}.log"
        return LiveServer(env, log).start(timeout=600)

    # -- 1. streaming: raw llama-cpp-python vs gradio_client vs /v1 ---------------------------
    # Each path streams every prompt once at full length (tokens/s), then LATENCY_ROUNDS times with
    # a few tokens (time to first token: it varies by tens of ms, so it needs more samples).

    def sample(self, measure: Callable[[str, int], dict[str, float]]) -> dict[str, list[dict[str, float]]]:
        speed_tokens, rounds = (64, 2) if self.args.quick else (200, LATENCY_ROUNDS)
        return {
            "speed": [measure(prompt, speed_tokens) for prompt in PROMPTS],
            "latency": [measure(prompt, LATENCY_TOKENS) for _ in range(rounds) for prompt in PROMPTS],
        }

    def raw(self) -> dict[str, list[dict[str, float]]]:
        """The reference: llama-cpp-python's own `Llama` streaming the same chat, nothing of ours around it."""
        s = self.settings
        llm = Llama(
            str(self.model_path), n_ctx=s.n_ctx, n_batch=s.n_batch, n_threads=s.threads, flash_attn=True, verbose=False
        )

        def measure(prompt: str, max_tokens: int) -> dict[str, float]:
            started = time.monotonic()
            stream = llm.create_chat_completion(
                conversation(prompt), max_tokens=max_tokens, temperature=0.0, stream=True
            )
            return stream_stats(
                accumulate(c["choices"][0]["delta"].get("content", "") for c in stream), started, self.count
            )

        return self.sample(measure)  # the model goes with this frame, before a server starts

    def through_gradio(self, server: LiveServer) -> dict[str, list[dict[str, float]]]:
        client = gradio_client(server.url)

        def measure(prompt: str, max_tokens: int) -> dict[str, float]:
            chat_id = client.predict("write", "intermediate", api_name="/new_chat")
            started = time.monotonic()
            job = client.submit(chat_id, prompt, None, None, 0.0, max_tokens, api_name="/chat")
            result = stream_stats(iter(job), started, self.count)
            job.result()
            return result

        return self.sample(measure)

    def through_queue(self, server: LiveServer) -> dict[str, list[dict[str, float]]]:
        """The same /chat endpoint through Gradio's queue protocol with plain httpx: what the server
        adds, without gradio_client's own cost (it polls its stream every 50 ms)."""
        client = gradio_client(server.url)
        fn_index = next(d["id"] for d in client.config["dependencies"] if d.get("api_name") == "chat")
        http = httpx.Client(base_url=server.url + "gradio_api/", timeout=120)

        def measure(prompt: str, max_tokens: int) -> dict[str, float]:
            chat_id = client.predict("write", "intermediate", api_name="/new_chat")
            session = uuid.uuid4().hex
            started = time.monotonic()
            data = [chat_id, prompt, None, None, 0.0, max_tokens]
            joined = http.post("queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session})
            joined.raise_for_status()
            first = last = None
            text = ""
            with http.stream("GET", "queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    if message.get("msg") == "process_generating":
                        last = time.monotonic()
                        first = first or last
                    if message.get("msg") == "process_completed":
                        text = message["output"]["data"][0]
                        break
            assert first is not None and last is not None, "no text streamed"
            tokens = self.count(text)
            speed = (tokens - 1) / (last - first) if last > first else float("nan")
            return {"ttft_s": first - started, "tokens": tokens, "tokens_per_s": speed}

        return self.sample(measure)

    def through_v1(self, server: LiveServer) -> dict[str, list[dict[str, float]]]:
        ai = OpenAI(base_url=server.url + "v1", api_key="bench")

        def measure(prompt: str, max_tokens: int) -> dict[str, float]:
            started = time.monotonic()
            stream = ai.chat.completions.create(
                model=self.args.model, messages=conversation(prompt), max_tokens=max_tokens, temperature=0, stream=True
            )
            deltas = (c.choices[0].delta.content or "" for c in stream if c.choices)
            return stream_stats(accumulate(deltas), started, self.count)

        return self.sample(measure)

    def streaming(self) -> None:
        runs = {"raw llama-cpp-python": self.raw()}
        server = self.server(kv_cache_mb="0")
        try:
            runs["app via gradio_client"] = as_client(lambda: self.through_gradio(server))
            runs["app via Gradio's queue (httpx, no client library)"] = as_client(lambda: self.through_queue(server))
            runs["app via /v1"] = as_client(lambda: self.through_v1(server))
        finally:
            server.stop()
        summary: dict[str, dict[str, Any]] = {}
        for name, sampled in runs.items():
            ttfts = [r["ttft_s"] for r in sampled["latency"]]
            summary[name] = {
                "tokens_per_s": statistics.median(r["tokens_per_s"] for r in sampled["speed"]),
                "ttft_s": statistics.median(ttfts),
                "ttft_p90_s": pct(ttfts, 0.9),
                "runs": sampled,
            }
        raw = summary["raw llama-cpp-python"]
        for s in summary.values():
            if s is not raw:
                s["ratio"] = s["tokens_per_s"] / raw["tokens_per_s"]
                s["added_ttft_s"] = s["ttft_s"] - raw["ttft_s"]
        self.results["streaming"] = summary

    # -- 2. follow-ups with 4 interleaving chats, with and without the KV cache ---------------

    def chat_with_history(self, store: ChatStore, history_tokens: int, tag: int) -> str:
        chat_id = store.create("write", "intermediate")
        total, n = 0, 0
        while total < history_tokens:
            code = "".join(CODE_LINE.format(i=tag * 1000 + n * 10 + i, r=i) for i in range(8))
            question, answer = FILLER_QUESTION.format(code=code), FILLER_ANSWER.format(n=8)
            store.append(chat_id, {"role": "user", "content": question})
            store.append(chat_id, {"role": "assistant", "content": answer})
            total += self.count(question) + self.count(answer) + 10
            n += 1
        return chat_id

    def follow_up(self, client: Client, chat_id: str, question: str) -> float:
        started = time.monotonic()
        job = client.submit(chat_id, question, None, None, 0.0, 16, api_name="/chat")
        first = next(u for u in job if u)
        assert first
        ttft = time.monotonic() - started
        job.result()
        return ttft

    def ask_twice(self, client: Client, chats: list[str]) -> list[float]:
        """Follow-up time to first token in each chat, once the first question has been answered."""
        for chat_id in chats:  # the first question after the history: nothing cached yet
            self.follow_up(client, chat_id, "Which handler retries most?")
        return [self.follow_up(client, chat_id, "Now write a test for it.") for chat_id in chats]

    def follow_ups(self) -> None:
        sizes = [500] if self.args.quick else [500, 1500, 3000]
        store = ChatStore.from_url(self.redis.url, 3600)
        table: dict[str, Any] = {}
        for label, cache_mb in (("with cache", "1024"), ("without cache", "0")):
            server = self.server(kv_cache_mb=cache_mb)
            client = gradio_client(server.url)
            try:
                for size in sizes:
                    chats = [self.chat_with_history(store, size, n) for n in range(self.args.chats)]
                    ttfts = as_client(partial(self.ask_twice, client, chats))
                    table.setdefault(str(size), {})[label] = {
                        "ttft_p50_s": statistics.median(ttfts),
                        "ttft_max_s": max(ttfts),
                        "runs": ttfts,
                    }
                    print(f"  follow-up at {size} tokens, {label}: {[round(t, 2) for t in ttfts]}", flush=True)
                table.setdefault("peak_rss_mb", {})[label] = server.peak_rss_bytes() / 2**20
            finally:
                server.stop()
        self.results["follow_ups"] = table

    # -- 3. 16 simultaneous users --------------------------------------------------------------

    def load(self) -> None:
        users = self.args.users
        server = self.server(queue_max_size=str(self.args.queue))
        outcomes: list[dict[str, Any]] = []
        lock = threading.Lock()

        def user(n: int) -> None:
            lower_priority()
            client = gradio_client(server.url)
            chat_id = client.predict("write", "beginner", api_name="/new_chat")
            started = time.monotonic()
            record: dict[str, Any] = {"user": n}
            try:
                job = client.submit(
                    chat_id,
                    f"User {n}: write a Python one-liner that sums a list.",
                    None,
                    None,
                    0.0,
                    48,
                    api_name="/chat",
                )
                first = None
                for update in job:
                    if update and first is None:
                        first = time.monotonic() - started
                answer = job.result()
                stored = client.predict(chat_id, api_name="/history")
                record.update(
                    outcome="completed", wait_s=first, tokens=self.count(answer), saved=stored[-1]["content"] == answer
                )
            except Exception as exc:  # noqa: BLE001 - every other outcome is reported, not raised
                record.update(outcome="rejected" if "queue is full" in str(exc).lower() else "error", error=str(exc))
            record["done_s"] = time.monotonic() - started
            with lock:
                outcomes.append(record)

        started = time.monotonic()
        threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        peak = server.peak_rss_bytes()
        server.stop()
        done = [o for o in outcomes if o["outcome"] == "completed"]
        waits = [o["wait_s"] for o in done if o["wait_s"] is not None]
        self.results["load"] = {
            "users": users,
            "queue_max_size": self.args.queue,
            "completed": len(done),
            "rejected": sum(o["outcome"] == "rejected" for o in outcomes),
            "lost": sum(o["outcome"] == "error" for o in outcomes) + sum(not o["saved"] for o in done),
            "wait_p50_s": pct(waits, 0.5),
            "wait_p95_s": pct(waits, 0.95),
            "aggregate_tokens_per_s": sum(o["tokens"] for o in done) / wall,
            "wall_s": wall,
            "peak_rss_mb": peak / 2**20,
            "runs": outcomes,
        }

    # -- report ----------------------------------------------------------------------------------

    def report(self) -> str:
        r = self.results
        lines = [f"ChMOCoder benchmark · model {r['model']} · {r['cpus']} CPUs", ""]
        if "streaming" in r:
            lines += [
                "| path | tokens/s | ratio to raw | time to first token p50 / p90 | added (p50) |",
                "|---|---|---|---|---|",
            ]
            for name, s in r["streaming"].items():
                added = f"{s['added_ttft_s'] * 1000:+.0f} ms" if "added_ttft_s" in s else ""
                ttft = f"{s['ttft_s']:.3f} s / {s['ttft_p90_s']:.3f} s"
                lines.append(f"| {name} | {s['tokens_per_s']:.2f} | {s.get('ratio', 1):.3f} | {ttft} | {added} |")
            lines.append("")
        if "follow_ups" in r:
            lines += [
                f"| history tokens ({self.args.chats} chats interleaving) "
                "| follow-up TTFT with cache (p50 / max) | without cache (p50 / max) |",
                "|---|---|---|",
            ]
            for size, row in r["follow_ups"].items():
                if size == "peak_rss_mb":
                    continue
                w, wo = row["with cache"], row["without cache"]
                lines.append(
                    f"| {size} | {w['ttft_p50_s']:.2f} s / {w['ttft_max_s']:.2f} s "
                    f"| {wo['ttft_p50_s']:.2f} s / {wo['ttft_max_s']:.2f} s |"
                )
            rss = r["follow_ups"]["peak_rss_mb"]
            lines += [
                "",
                f"peak memory of the app: {rss['with cache']:.0f} MB with cache, {rss['without cache']:.0f} MB without",
                "",
            ]
        if "load" in r:
            x = r["load"]
            lines += [
                "| users | queue max | completed | rejected (queue full) | lost | wait to first token p50 / p95 "
                "| aggregate tokens/s | peak memory |",
                "|---|---|---|---|---|---|---|---|",
                f"| {x['users']} | {x['queue_max_size']} | {x['completed']} | {x['rejected']} | {x['lost']} "
                f"| {x['wait_p50_s']:.1f} s / {x['wait_p95_s']:.1f} s | {x['aggregate_tokens_per_s']:.1f} "
                f"| {x['peak_rss_mb']:.0f} MB |",
            ]
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=Settings().model, help="a catalog name (configs/models.toml)")
    parser.add_argument("--quick", action="store_true", help="short answers and one history size")
    parser.add_argument("--chats", type=int, default=4, help="chats interleaving in the follow-up test")
    parser.add_argument("--users", type=int, default=16, help="simultaneous users in the load test")
    parser.add_argument("--queue", type=int, default=32, help="the server's queue size in the load test")
    parser.add_argument("--only", choices=["streaming", "follow_ups", "load"], action="append")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        for part in args.only or ["streaming", "follow_ups", "load"]:
            print(f"running {part} …", flush=True)
            getattr(bench, part)()
    finally:
        bench.redis.stop()
    table = bench.report()
    print(table)
    out = PROJECT_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.model}.json"
    path.write_text(json.dumps(bench.results | {"table": table}, indent=2))
    print(f"\nwrote {path.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()

"""What continuous batching gains on this machine: N chats answered at once by the local engine.

    .venv/bin/python bench/batching.py                       # the default model, 1 2 4 6 8 sequences
    .venv/bin/python bench/batching.py --model smollm2-135m-instruct-q4_1 --counts 1,4

For each count N, an engine with N sequences answers N different questions at once (temperature 0,
`--tokens` each, no stop), then one question alone on the same engine. Reported: the total tokens/s
of all N, each stream's own tokens/s (slowest and median), and the single stream's speed, so that the
cost of a larger context for a lone user shows too. Also: the longest pause a running answer sees
while a long prompt (`--long` tokens) joins, which chunked prompt reading keeps short.

Prints a Markdown table and writes bench/results/<time>-batching-<model>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import save  # noqa: E402
from chmocoder.engine import GenerationParams, GenerationStats  # noqa: E402
from chmocoder.local_engine import LocalEngine  # noqa: E402
from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.prompts import system_prompt  # noqa: E402
from chmocoder.settings import Settings  # noqa: E402

TOPICS = ["decorators", "generators", "list comprehensions", "context managers", "dataclasses", "asyncio",
          "type hints", "closures", "exceptions", "iterators", "slicing", "f-strings"]  # fmt: skip


def question(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt("explain", "intermediate")},
        {"role": "user", "content": f"Explain Python {TOPICS[i % len(TOPICS)]} in detail, with examples."},
    ]


def stream(engine: LocalEngine, prompt: list[int], tokens: int, gaps: list[float] | None = None) -> GenerationStats:
    stats = GenerationStats()
    last = time.monotonic()
    for _ in engine.stream(prompt, GenerationParams(tokens, 0.0, 1.0), stats):
        now = time.monotonic()
        if gaps is not None:
            gaps.append(now - last)
        last = now
    return stats


def at_once(engine: LocalEngine, n: int, tokens: int) -> dict[str, Any]:
    prompts = [engine.prompt_tokens(question(i)) for i in range(n)]
    results: list[GenerationStats] = [GenerationStats()] * n
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, stream(engine, prompts[i], tokens)))
        for i in range(n)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    speeds = [s.tokens_per_s or 0.0 for s in results]
    return {
        "sequences": n,
        "total_tokens_per_s": sum(s.completion_tokens for s in results) / wall,
        "stream_tokens_per_s_min": min(speeds),
        "stream_tokens_per_s_p50": statistics.median(speeds),
        "ttft_max_s": max(s.ttft_s or 0.0 for s in results),
        "wall_s": wall,
    }


def long_prompt_pause(engine: LocalEngine, prompt_tokens: int) -> dict[str, Any]:
    """A running answer's longest wait between two updates while a long prompt joins."""
    filler = " ".join(f"line {i}: total += values[{i}] * weights[{i}]" for i in range(prompt_tokens // 12))
    long = engine.prompt_tokens([{"role": "user", "content": f"Explain this code:\n{filler}"}])
    gaps: list[float] = []
    runner = threading.Thread(target=lambda: stream(engine, engine.prompt_tokens(question(0)), 400, gaps))
    runner.start()
    time.sleep(3.0)
    joined = stream(engine, long, 8)
    runner.join()
    return {
        "long_prompt_tokens": len(long),
        "long_prompt_ttft_s": joined.ttft_s,
        "running_max_pause_s": max(gaps[1:], default=None),
    }


def llama_reference(path: Path, settings: Settings, tokens: int) -> float:
    """The same lone question through llama-cpp-python's `Llama` (the engine before batching)."""
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=settings.n_ctx, n_batch=settings.n_batch, n_threads=settings.threads,
                n_threads_batch=settings.threads, flash_attn=True, verbose=False)  # fmt: skip
    speeds = []
    for _ in range(2):
        first, count = None, 0
        for chunk in llm.create_chat_completion(question(1), max_tokens=tokens, temperature=0.0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                first, count = first or time.monotonic(), count + 1
        speeds.append((count - 1) / (time.monotonic() - first) if first else 0.0)
    return max(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=Settings().model)
    parser.add_argument("--counts", default="1,2,4,6,8")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--long", type=int, default=1500, help="tokens of the prompt that joins a running answer")
    args = parser.parse_args()
    # As the app (create_app) does: the model's thread gets the GIL back at once after each decode.
    sys.setswitchinterval(0.0005)
    settings = Settings(model=args.model)
    path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    reference = llama_reference(path, settings, args.tokens)
    print(f"a lone stream through Llama (before): {reference:.1f} tokens/s", flush=True)
    rows = []
    for n in (int(c) for c in args.counts.split(",")):
        engine = LocalEngine(path, settings.n_ctx, settings.threads, settings.n_batch, parallel=n)
        try:
            stream(engine, engine.prompt_tokens(question(99)), 8)  # warm up
            row = at_once(engine, n, args.tokens)
            row["single_stream_tokens_per_s"] = stream(
                engine, engine.prompt_tokens(question(1)), args.tokens
            ).tokens_per_s
            if n == max(int(c) for c in args.counts.split(",")) or n == settings.parallel:
                row |= long_prompt_pause(engine, args.long)
        finally:
            engine.close()
        rows.append(row)
        print(row, flush=True)
    lines = [
        "| sequences | total tokens/s | gain | each stream min / p50 | a lone stream | slowest first token |",
        "|---|---|---|---|---|---|",
    ]
    base = rows[0]["total_tokens_per_s"]
    for r in rows:
        lines.append(
            f"| {r['sequences']} | {r['total_tokens_per_s']:.1f} | {r['total_tokens_per_s'] / base:.2f}× "
            f"| {r['stream_tokens_per_s_min']:.1f} / {r['stream_tokens_per_s_p50']:.1f} "
            f"| {r['single_stream_tokens_per_s']:.1f} | {r['ttft_max_s']:.2f} s |"
        )
    for r in rows:
        if "running_max_pause_s" in r:
            lines.append(
                f"\nWith {r['sequences']} sequences, a {r['long_prompt_tokens']}-token prompt joining "
                "a running answer: "
                f"its first token after {r['long_prompt_ttft_s']:.1f} s; the running answer's longest pause "
                f"{r['running_max_pause_s']:.2f} s."
            )
    lines.append(
        f"\nA lone stream through llama-cpp-python's `Llama` (the engine before batching): {reference:.1f} tokens/s."
    )
    print("\n".join(lines))
    found = {"rows": rows, "model": args.model, "tokens": args.tokens, "llama_single_stream_tokens_per_s": reference}
    save(found, f"batching-{args.model}")


if __name__ == "__main__":
    main()

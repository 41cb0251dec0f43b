"""Search benchmark: how long finding a word in one browser's chats takes, for 100 to 1,000 chats.

    .venv/bin/python bench/search.py                     # 100, 300, 1000 chats of 12 messages
    .venv/bin/python bench/search.py --chats 500 --messages 30

Fills an embedded Redis of its own with chats of realistic size (questions with code, answers of
about 1,500 characters), then times ChatLibrary.search (what the sidebar's box calls) for a word in
one chat, a word in every chat, and a word in none. Prints a table; writes bench/results/<time>-search.json.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import save  # noqa: E402
from chmocoder.library import ChatLibrary  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402

QUESTION = "Why does this fail for an empty list?\n```python\ndef average(xs):\n    return sum(xs) / len(xs)\n```"
ANSWER = (
    "The function divides by `len(xs)`, which is 0 for an empty list, so Python raises ZeroDivisionError.\n"
    "Check for the empty case first:\n```python\ndef average(xs):\n    if not xs:\n        return 0.0\n"
    "    return sum(xs) / len(xs)\n\nassert average([]) == 0.0\nassert average([1, 2, 3]) == 2.0\n```\n"
) * 4
QUERIES = {"in one chat": "marmalade unicorn", "in every chat": "ZeroDivisionError empty", "in none": "kubernetes"}


def fill(store: ChatStore, owner: str, chats: int, messages: int) -> None:
    for n in range(chats):
        chat_id = store.create("debug", "intermediate", owner, f"Chat {n}: averages")
        for m in range(messages):
            text = QUESTION if m % 2 == 0 else ANSWER
            if n == chats // 2 and m == messages - 1:
                text += "\nA marmalade unicorn appears here."
            store.append(chat_id, {"role": "user" if m % 2 == 0 else "assistant", "content": text})


def time_search(library: ChatLibrary, owner: str, query: str, repeats: int) -> dict[str, Any]:
    times, hits = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        hits = len(library.search(owner, query))
        times.append(time.perf_counter() - started)
    ordered = sorted(times)
    return {
        "hits": hits,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", default="100,300,1000", help="comma-separated numbers of chats")
    parser.add_argument("--messages", type=int, default=12, help="messages per chat")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        redis = EmbeddedRedis(Path(home), port=free_port()).start()
        try:
            for chats in (int(c) for c in args.chats.split(",")):
                store = ChatStore.from_url(redis.url, 3600)
                owner = secrets.token_urlsafe(32)
                fill(store, owner, chats, args.messages)
                library = ChatLibrary(store)
                for kind, query in QUERIES.items():
                    found = time_search(library, owner, query, args.repeats)
                    rows.append({"chats": chats, "messages": args.messages, "query": kind} | found)
                    print(f"{chats:>5} chats  {kind:<14} {found['hits']:>3} found  "
                          f"p50 {found['p50_ms']:7.1f} ms  p95 {found['p95_ms']:7.1f} ms")  # fmt: skip
        finally:
            redis.stop()
    chars = len(QUESTION) + len(ANSWER)
    save({"rows": rows, "chars_per_message_pair": chars}, "search")


if __name__ == "__main__":
    main()

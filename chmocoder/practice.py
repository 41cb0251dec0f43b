"""Practice mode: a small exercise on what a chat was about, with hidden tests run in the sandbox.

"Practice" asks the model for an exercise in a strict format, and keeps it only if its own solution
passes its own tests in the sandbox and its starter does not; otherwise an exercise from the built-in
set (chmocoder.practice_set) on the nearest topic is given, and says so. The learner's code is run
against the hidden tests and told how many pass, never what they are; hints come as a ladder: a hint,
then pseudocode, then the solution. Everything, results included, is kept in the chat's metadata in
Redis (field `practice`, chmocoder.practice_record), so it expires with the chat and is back after a
reload; the exports include how each exercise went, never its tests.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from . import checks as ck
from .chat import ChatService, check_owner
from .engine import EngineError
from .errors import ChatError, Forbidden, InvalidInput, Unavailable, storage_errors
from .practice_record import RUNGS, help_at, record_of
from .practice_set import PRACTICE_SET, Exercise, in_language, topic_words
from .prompts import question_language
from .runner import CodeRunner
from .verify import Plan, Verdict, Verifier

log = logging.getLogger(__name__)

LEVELS = ("beginner", "intermediate")
EXERCISE_TOKENS = 480
TOPIC_CHARS = 1500
MIN_TESTS, MAX_TESTS = 3, 8
MAX_KEPT_CODE = 20_000
PRACTICE_SYSTEM = (
    "You are a patient programming teacher. You write one small Python exercise at a time, in exactly "
    "the format you are asked for, with tests that its solution passes."
)
# A failing test's detail that is an exception raised in the code (an assert that is not `==` failing
# gives a bare AssertionError: that is the test's, not the code's).
RAISED = re.compile(r"^(?!AssertionError\b)(\w+(?:Error|Exception))\b")
SECTIONS = ("TITLE", "TASK", "FUNCTION", "STARTER", "TESTS", "HINT", "PSEUDOCODE", "SOLUTION")
# A section starts a line, in capitals, with a colon: "TASK:", "**TASK:**", "## TASK:" (never in code).
SECTION = re.compile(rf"^[ \t]*(?:\*\*|#+[ \t]*)?({'|'.join(SECTIONS)})\b(?:\*\*)?[ \t]*:(?:\*\*)?", re.M)
FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.M | re.S)
LOCK_STRIPES = 64
KEPT_EXERCISES = 20  # a chat's record keeps this many; earlier ones keep their results, not their code


def exercise_request(topic: str, level: str) -> str:
    """What the model is asked for: an exercise on the chat's topic, in sections the parser reads
    (for a chat in Russian, with its words in Russian)."""
    russian = " Write the TITLE, TASK, HINT and PSEUDOCODE in Russian." if question_language(topic) == "ru" else ""
    return (
        f"Here is what a {level} learner just asked about and was told:\n\n{topic}\n\n"
        "Write one small Python exercise on the same idea: a single function to write. Answer in exactly "
        "this format, and nothing else:\n"
        "TITLE: a few words\n"
        "TASK: two sentences saying what the function takes and returns\n"
        "FUNCTION: the function's name\n"
        "STARTER:\n```python\ndef name(args):\n    pass\n```\n"
        "TESTS:\n```python\nassert name(...) == ...\n```\n(four to six asserts, one of them an edge case)\n"
        "HINT: one sentence, no code\n"
        "PSEUDOCODE:\nthree to six lines of plain steps\n"
        "SOLUTION:\n```python\ndef name(args):\n    ...\n```" + russian
    )


def _sections(text: str) -> dict[str, str]:
    fenced = [(m.start(), m.end()) for m in FENCED.finditer(text)]
    found = [m for m in SECTION.finditer(text) if not any(a < m.start() < b for a, b in fenced)]
    parts: dict[str, str] = {}
    for here, after in zip(found, [*found[1:], None], strict=False):
        end = after.start() if after is not None else len(text)
        parts.setdefault(here.group(1).upper(), text[here.end() : end].strip())
    return parts


def _code(part: str) -> str:
    blocks = ck.code_blocks(part)
    return (blocks[0].code if blocks else part).strip() + "\n"


def _asserts(code: str, function: str) -> tuple[str, ...]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    found = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assert)]
    return tuple(t for t in found if re.search(rf"\b{re.escape(function)}\s*\(", t))[:MAX_TESTS]


def parse_exercise(text: str) -> Exercise | None:
    """The model's exercise, or None when a part is missing or its code does not parse."""
    parts = _sections(text)
    if any(not parts.get(name) for name in SECTIONS):
        return None
    function = parts["FUNCTION"].strip("`* ").removeprefix("def ").split("(")[0].strip()
    starter, solution = _code(parts["STARTER"]), _code(parts["SOLUTION"])
    if not function.isidentifier() or not all(_defines(code, function) for code in (starter, solution)):
        return None
    tests = _asserts(_code(parts["TESTS"]), function)
    if len(tests) < MIN_TESTS:
        return None
    hint, pseudocode = parts["HINT"].strip(), _code(parts["PSEUDOCODE"]).strip()
    title, task = parts["TITLE"].strip("*# "), parts["TASK"].strip()
    return Exercise(title[:80], task, function, starter, tests, hint, pseudocode, solution, origin="model")


def _defines(code: str, function: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == function for n in tree.body)


def nearest_exercise(topic: str, given: set[str]) -> Exercise:
    """The built-in exercise whose words the chat mentions most, not given in this chat yet (once all
    have been given, they come round again)."""
    words = set(re.findall(r"[a-zа-яё]+", topic.lower()))
    fresh = [e for e in PRACTICE_SET if e.function not in given] or list(PRACTICE_SET)
    return max(fresh, key=lambda e: sum(any(w.startswith(stem) for w in words) for stem in topic_words(e)))


def hidden_plan(code: str, exercise: Exercise) -> Plan:
    """The learner's code, run as written, then each hidden test as one check."""
    tests = ck.parse_program(["\n".join(exercise.tests)], "generated").checks
    return Plan(code, tests, functions=[exercise.function])


@dataclass
class CheckOutcome:
    """What a learner is told about a run against the hidden tests: counts, never the tests."""

    passed: int
    total: int
    solved: bool
    message: str
    raised: str = ""  # an exception the code raised in a failing test ("ZeroDivisionError")
    limit: str = ""  # a sandbox limit the code hit ("stopped after 5 s (the time limit)")
    error: str = ""  # why the code does not run at all (its SyntaxError or load error)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _told(verdict: Verdict, exercise: Exercise) -> CheckOutcome:
    """The verdict in words a learner can act on, without the hidden tests' inputs or results."""
    total = len(exercise.tests)
    if verdict.status == "not_checked":
        raise Unavailable(f"your code cannot be checked now: {verdict.reason}")
    failing = verdict.failing or {}
    if failing.get("check") in ("the code runs", "the code parses"):
        error = failing.get("detail", "")
        return CheckOutcome(0, total, False, f"Your code does not run: {error}", error=error)
    if verdict.status == "verified":
        return CheckOutcome(total, total, True, f"All {total} hidden tests pass. Solved!")
    failed = [row.get("detail", "") for row in verdict.checks if not row["passed"]]
    raised = sorted({m.group(1) for detail in failed if (m := RAISED.match(detail))})
    limit = next((detail for detail in failed if detail.endswith("limit)")), "")
    also = f" One of them raised {raised[0]} in your code." if raised else ""
    also += f" Your code was {limit}." if limit else ""
    told = f"{verdict.passed} of {total} hidden tests pass.{also} Keep going!"
    return CheckOutcome(verdict.passed, total, False, told, raised=raised[0] if raised else "", limit=limit)


class PracticeCoach:
    """Exercises, checks and hints for one chat at a time; the record lives in the chat's metadata."""

    def __init__(self, service: ChatService, verifier: Verifier, runner: CodeRunner) -> None:
        self.service = service
        self.verifier = verifier
        self.runner = runner
        # A lock per chat (striped: a bounded set) around each read-modify-write of its record.
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    # -- the record ----------------------------------------------------------------------------------

    def record(self, chat_id: str) -> dict[str, Any]:
        return record_of(self.service.info(chat_id) if chat_id else None)

    def _save(self, chat_id: str, record: dict[str, Any]) -> None:
        with storage_errors():
            self.service.store.update(chat_id, practice=json.dumps(record))

    def _mine(self, chat_id: str, owner: str) -> None:
        check_owner(owner)
        if not chat_id:
            raise InvalidInput("ask a question first: the exercise is about what the chat covers")
        with storage_errors():
            if not self.service.store.owns(owner, chat_id):
                raise Forbidden("only a chat in your list of chats can be practised in")

    def current(self, chat_id: str, owner: str) -> dict[str, Any]:
        self._mine(chat_id, owner)
        exercises = self.record(chat_id)["exercises"]
        if not exercises:
            raise InvalidInput('there is no exercise in this chat yet; press "Practice" for one')
        return exercises[-1]

    # -- a new exercise ------------------------------------------------------------------------------

    def start(self, chat_id: str, owner: str, level: str) -> dict[str, Any]:
        """A new exercise on what the chat was about: the model's if it passes its own tests, else the
        nearest one of the built-in set. Needs the model (the caller holds its queue) and the sandbox."""
        self._mine(chat_id, owner)
        if level not in LEVELS:
            raise InvalidInput("practice is for the beginner and intermediate levels; choose one of them first")
        if not self.verifier.available:
            raise Unavailable(f"practice needs the code sandbox, which is off: {self.runner.reason}")
        topic = self._topic(chat_id)
        given = {e["function"] for e in self.record(chat_id)["exercises"]}
        try:
            written = self.service.side_pass(PRACTICE_SYSTEM, exercise_request(topic, level), EXERCISE_TOKENS, chat_id)
        except (EngineError, ChatError) as exc:
            log.warning("practice: the model could not write an exercise: %s", exc)
            written = ""
        exercise, why = self.vet(parse_exercise(written))
        if exercise is None:
            exercise = in_language(nearest_exercise(topic, given), question_language(topic))
        log.info("practice exercise chat=%s origin=%s why=%s", chat_id, exercise.origin, why or "-")
        entry = {k: v for k, v in asdict(exercise).items() if k != "words"}
        entry |= {"started": time.time(), "level": level, "runs": 0, "best": 0, "rung": 0, "solved": False}
        entry |= {"code": exercise.starter, "model_refused": why}
        with self._locked(chat_id):  # read again: a check or a hint may have landed during the model's pass
            record = self.record(chat_id)
            for earlier in record["exercises"][: 1 - KEPT_EXERCISES]:
                earlier.pop("code", None)
            record["exercises"] = [*record["exercises"][1 - KEPT_EXERCISES :], entry]
            self._save(chat_id, record)
        return entry

    def _topic(self, chat_id: str) -> str:
        history = [m for m in self.service.history(chat_id) if m.get("content")]
        questions = [m for m in history if m["role"] == "user"]
        if not questions:
            raise InvalidInput("ask a question first: the exercise is about what the chat covers")
        answers = [m for m in history if m["role"] == "assistant"]
        topic = f"Question: {questions[-1]['content']}"
        if answers:
            topic += f"\n\nAnswer: {answers[-1]['content']}"
        return topic[:TOPIC_CHARS]

    def vet(self, exercise: Exercise | None) -> tuple[Exercise | None, str]:
        """The model's exercise if its solution passes its tests and its starter does not; else why not."""
        if exercise is None:
            return None, "not in the asked format"
        solved = self.verifier.run(hidden_plan(exercise.solution, exercise))
        if solved.status == "not_checked":
            return None, "the sandbox could not check it"
        if solved.status != "verified":
            return None, "its solution fails its own tests"
        if self.verifier.run(hidden_plan(exercise.starter, exercise)).status == "verified":
            return None, "its starter already passes"
        return exercise, ""

    # -- the learner's attempts ----------------------------------------------------------------------

    def check(self, chat_id: str, owner: str, code: Any) -> CheckOutcome:
        """Run the learner's code against the current exercise's hidden tests; the result is kept
        with that exercise (even if a new one was given meanwhile)."""
        entry = self.current(chat_id, owner)
        code = self.runner.validate(code)
        exercise = _exercise_of(entry)
        if ck.parses(code) and not _defines(code, exercise.function):
            raise InvalidInput(f"your code must define the function {exercise.function}(); keep its name")
        outcome = _told(self.verifier.run(hidden_plan(code, exercise)), exercise)
        self._update(chat_id, entry["started"], lambda kept: _after_run(kept, outcome, code))
        return outcome

    def hint(self, chat_id: str, owner: str) -> dict[str, Any]:
        """Reveal the next rung of the ladder (hint → pseudocode → solution); the entry, updated."""
        entry = self.current(chat_id, owner)
        if entry["rung"] >= len(RUNGS):
            raise InvalidInput("the solution is already shown; press Practice for a new exercise")
        return self._update(chat_id, entry["started"], lambda kept: kept.update(rung=min(len(RUNGS), kept["rung"] + 1)))

    def _locked(self, chat_id: str) -> threading.Lock:
        return self._locks[zlib.crc32(chat_id.encode()) % LOCK_STRIPES]

    def _update(self, chat_id: str, started: float, change: Any) -> dict[str, Any]:
        """Change the exercise given at `started`, read afresh under this chat's lock (the page's
        events for one chat run at once: Check in the sandbox's queue, Practice in the model's)."""
        with self._locked(chat_id):
            record = self.record(chat_id)
            entry = next((e for e in record["exercises"] if e["started"] == started), None)
            if entry is None:
                raise InvalidInput("that exercise is no longer kept in this chat; press Practice for a new one")
            change(entry)
            self._save(chat_id, record)
            return entry


def _exercise_of(entry: dict[str, Any]) -> Exercise:
    fields = {name: entry[name] for name in Exercise.__dataclass_fields__ if name in entry}
    fields["tests"], fields["words"] = tuple(fields.get("tests", ())), ()
    return Exercise(**fields)


def _after_run(entry: dict[str, Any], outcome: CheckOutcome, code: str) -> None:
    entry["runs"] += 1
    entry["best"] = max(entry["best"], outcome.passed)
    entry["code"] = code[:MAX_KEPT_CODE]
    entry["last"] = outcome.as_dict()
    if outcome.solved and not entry["solved"]:
        entry["solved"] = True
        entry["solved_at"] = time.time()
        entry["solved_with"] = help_at(entry["rung"])

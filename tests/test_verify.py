"""Verified answers against the real sandbox and the real test model: the verdict is true, repairs
happen and are kept, Stop keeps what was written, and every surface shows the verdict."""

from __future__ import annotations

from contextlib import closing

import pytest

from chmocoder import export
from chmocoder.chat import ChatService, TurnOptions
from chmocoder.checks import solution_code
from chmocoder.local_engine import LocalEngine
from chmocoder.sandbox import Sandbox
from chmocoder.settings import Settings
from chmocoder.store import ChatStore
from chmocoder.verify import (
    Plan,
    Verdict,
    Verifier,
    claims_request,
    next_attempt,
    not_checked,
    plan,
    repair_request,
    same_code,
    standing,
)

# The small test model echoes these at temperature 0 (its own "fix" keeps a + b).
TRUE_CLAIM = (
    "Repeat exactly this code and nothing else:\n```python\ndef add(a, b):\n    return a + b\n\n"
    "print(add(2, 3))  # Output: 5\n```"
)
FALSE_CLAIM = TRUE_CLAIM.replace("# Output: 5", "# Output: 6")


@pytest.fixture()
def verifier(sandbox: Sandbox) -> Verifier:
    return Verifier(sandbox)


@pytest.fixture()
def checked(engine: LocalEngine, store: ChatStore, settings: Settings, verifier: Verifier) -> ChatService:
    return ChatService(engine, store, settings, verifier)


def verdict_of(
    verifier: Verifier, answer: str, message: str = "", task: str = "write", drafted: list[str] | None = None
) -> dict:
    work = plan(answer, message, task, drafted)
    assert isinstance(work, Plan), work
    return verifier.run(work).as_dict()


def test_true_claims_are_verified_and_a_false_output_comment_is_caught(verifier: Verifier) -> None:
    good = "```python\ndef inc(x):\n    return x + 1\n\nprint(inc(1))  # Output: 2\nassert inc(-1) == 0\n```"
    assert verdict_of(verifier, good)["summary"] == "verified: 2/2 checks passed"
    # The case users met: the answer claims `# Output: 1` for a call its own code answers with 2.
    bad = good.replace("# Output: 2", "# Output: 1")
    verdict = verdict_of(verifier, bad)
    assert verdict["status"] == "failed" and verdict["summary"] == "1 of 2 checks fails"
    assert verdict["failing"] == {"check": "print(inc(1))  → 1", "detail": "expected 1, got 2"}


def test_code_that_does_not_parse_or_load_fails_and_the_model_is_told_why(verifier: Verifier) -> None:
    broken = verdict_of(verifier, "```python\ndef f(x)\n    return x\n\nassert f(1) == 1\n```")
    assert broken["failing"] == {"check": "the code parses", "detail": "SyntaxError: line 1: expected ':'"}
    crashing = verdict_of(
        verifier, "```python\nLIMIT = int('ten')\n\ndef f():\n    return LIMIT\n\nassert f() == 10\n```"
    )
    assert crashing["failing"]["check"] == "the code runs"
    assert "ValueError: invalid literal for int()" in crashing["failing"]["detail"]
    request = repair_request("q", "LIMIT = 1", Verdict(**{k: v for k, v in crashing.items() if k != "summary"}))
    assert "- `the code runs`: ValueError: invalid literal" in request


def test_code_that_breaks_after_its_function_is_checked_and_the_break_is_a_failure(verifier: Verifier) -> None:
    cut = "```python\ndef double(x):\n    return 2 * x\n\nassert double(2) == 4\nprint(double('ab')\n```"
    verdict = verdict_of(verifier, cut)
    assert verdict["status"] == "failed" and verdict["passed"] == 1 and verdict["total"] == 2
    assert verdict["checks"][-1]["label"] == "the code parses"
    assert verdict["failing"]["detail"] == "SyntaxError: line 5: '(' was never closed"


def test_a_bug_reports_example_fails_on_the_users_code_and_passes_on_the_fix(verifier: Verifier) -> None:
    report = (
        "`last(3)` returns [0, 1] instead of [0, 1, 2]. Why?\n"
        "```python\ndef last(n):\n    return list(range(n - 1))\n```"
    )
    fix = "```python\ndef last(n):\n    return list(range(n))\n```"
    verdict = verdict_of(verifier, fix, report, "debug")
    assert verdict["summary"] == "verified: 1/1 checks passed"
    assert verdict["checks"] == [
        {"label": "last(3) == [0, 1, 2]", "origin": "user", "passed": True, "failed_on_original": True}
    ]
    wrong = "```python\ndef last(n):\n    return list(range(1, n))\n```"
    verdict = verdict_of(verifier, wrong, report, "debug")
    assert verdict["failing"] == {"check": "last(3) == [0, 1, 2]", "detail": "expected [0, 1, 2], got [1, 2]"}


def test_a_check_that_never_ends_fails_at_the_time_limit_and_keeps_earlier_results(sandbox: Sandbox) -> None:
    answer = "```python\ndef spin(n):\n    while n:\n        pass\n\nassert spin(0) is None\nspin(1)\n```"
    work = plan(answer, "", "write")
    assert isinstance(work, Plan)
    verdict = Verifier(sandbox, time_limit_s=2.0).run(work).as_dict()
    assert verdict["status"] == "failed", "never 'verified' for code that did not finish"
    assert [row["passed"] for row in verdict["checks"]] == [True, False]
    assert verdict["failing"]["check"] == "the example code runs without an error"
    assert "time limit" in verdict["failing"]["detail"]


def test_with_the_sandbox_off_nothing_runs_and_the_verdict_says_so() -> None:
    off = Sandbox(workers=1, time_limit_s=5.0, memory_mb=256, output_chars=20_000, enabled=False).start()
    work = plan("```python\nprint(1)  # Output: 1\n```", "", "write")
    assert isinstance(work, Plan)
    verdict = Verifier(off).run(work).as_dict()
    assert verdict["status"] == "not_checked" and verdict["summary"].startswith("not checked: ")
    assert verdict["passed"] == verdict["total"] == 0


def test_a_verified_answer_is_stored_with_its_verdict(checked: ChatService) -> None:
    chat_id = checked.new_chat("write", "beginner")
    replies = list(checked.send(chat_id, TRUE_CLAIM))
    final = replies[-1]
    assert final.verdict is not None and final.verdict["summary"] == "verified: 1/1 checks passed"
    assert any(r.status.startswith("checking") for r in replies), "the user sees the check happen"
    stored = checked.history(chat_id)[-1]
    assert stored["verdict"]["summary"] == "verified: 1/1 checks passed" and "attempts" not in stored
    markdown = export.to_markdown(checked.info(chat_id), checked.history(chat_id))
    assert "*Checked: verified: 1/1 checks passed*" in markdown


def test_a_failing_answer_goes_back_for_repairs_and_every_attempt_is_kept(checked: ChatService) -> None:
    chat_id = checked.new_chat("write", "beginner")
    replies = list(checked.send(chat_id, FALSE_CLAIM))
    statuses = [r.status for r in replies if r.status]
    assert "1 of 1 checks fails · fixing (round 1 of 2)" in statuses, statuses
    stored = checked.history(chat_id)[-1]
    verdict = stored["verdict"]
    assert verdict["repairs"] == 2 or verdict["status"] == "verified"
    if verdict["status"] == "failed":
        assert verdict["summary"] == "1 of 1 checks still fails after 2 repairs"
    assert "```python" in stored["content"], "a reply without code never replaces an answer with code"
    assert len(stored["attempts"]) == verdict["repairs"], "each repair round left an attempt"
    for attempt in stored["attempts"]:  # each one failed, or was set aside for a reason the user is told
        rejected = attempt.get("rejected", "")
        assert (
            rejected == "it gave no Python code"
            or rejected.startswith("it did worse on the checks (")
            or (attempt["verdict"]["status"] == "failed")
        ), attempt
    assert replies[-1].text == stored["content"] and replies[-1].verdict == verdict


def test_repairs_are_sampled_warm_yet_a_turn_repeats_exactly(checked: ChatService) -> None:
    """Asked greedily to revise its own answer, the default model gave the failing code back unchanged;
    repairs now sample warm, each round with its own fixed seed, so the same turn still gives the same
    attempts and answer every time (a user's "regenerate" and our benchmark both rely on that). The
    test engine has one sequence: with several, a prompt reusing another sequence's cells is read at
    other places in the shared KV buffer and warm draws part (see LocalEngine's docstring)."""
    options = TurnOptions(task="write", level="beginner", temperature=0.0)
    runs = [list(checked.complete([{"role": "user", "content": FALSE_CLAIM}], options))[-1] for _ in range(2)]
    assert runs[0].verdict is not None and runs[0].verdict["repairs"] >= 1
    assert [a["content"] for a in runs[0].attempts] == [a["content"] for a in runs[1].attempts]
    assert runs[0].text == runs[1].text and runs[0].verdict == runs[1].verdict
    drafts = [a["content"] for a in runs[0].attempts] + [runs[0].text]
    assert len(set(drafts)) > 1, "the repairs gave the same answer back"


def test_stop_during_a_repair_keeps_the_last_whole_answer(checked: ChatService) -> None:
    chat_id = checked.new_chat("write", "beginner")
    with closing(checked.send(chat_id, FALSE_CLAIM, TurnOptions(max_new_tokens=200))) as replies:
        for reply in replies:
            if "fixing" in reply.status and reply.text:
                break
    checked.wait_until_saved(chat_id)
    stored = checked.history(chat_id)[-1]
    assert stored["stopped"] and "# Output: 6" in stored["content"], "the draft stays the answer"
    assert stored["verdict"]["summary"] == "1 of 1 checks fails", "the verdict is the draft's own"
    assert stored["attempts"][-1]["stopped"] and stored["attempts"][-1]["content"], "the cut repair is kept"


def test_verification_can_be_turned_off_and_then_says_not_checked(checked: ChatService) -> None:
    final = list(checked.complete([{"role": "user", "content": TRUE_CLAIM}], TurnOptions(verify=False)))[-1]
    assert final.verdict is not None
    assert final.verdict["summary"] == "not checked: checking is turned off for this answer"


def test_a_debug_answer_that_changes_the_pasted_code_shows_the_diff(checked: ChatService) -> None:
    chat_id = checked.new_chat("debug", "beginner")
    report = "Repeat exactly this code and nothing else:\n```python\ndef add(a, b):\n    return a - b\n```"
    final = list(checked.send(chat_id, report))[-1]
    stored = checked.history(chat_id)[-1]
    assert stored["content"] == final.text
    diff = final.text.split("**Changes to your code**\n```diff\n", 1)[1]
    assert diff.startswith("--- your code\n+++ the fix\n")
    assert "-    return a - b\n+    return a + b\n" in diff, "the small model 'fixes' the subtraction"


def test_an_answer_cut_inside_its_code_is_checked_but_not_repaired(checked: ChatService) -> None:
    final = list(checked.complete([{"role": "user", "content": FALSE_CLAIM}], TurnOptions(max_new_tokens=5)))[-1]
    assert final.stats["finish_reason"] == "length" and final.stats["completion_tokens"] == 5
    assert final.verdict is not None and final.verdict["failing"]["check"] == "the code parses"
    assert final.verdict["repairs"] == 0 and final.attempts == []


def test_a_repair_that_does_worse_than_its_draft_is_not_kept(verifier: Verifier) -> None:
    """What the benchmark saw: a repair chasing the answer's own wrong claim dropped the function the
    user's examples call. The draft, which did what the user asked, must stay the answer."""
    message = "Write `double(x)`:\n>>> double(2)\n4"
    draft = "```python\ndef double(x):\n    return 2 * x\n\nprint(double(3))  # Output: 7\n```"
    dropped = "```python\ndef twice(x):\n    return 2 * x\n\nprint(twice(3))  # Output: 6\n```"
    wrong = "```python\ndef double(x):\n    return 2 * x + 1\n\nprint(double(3))  # Output: 7\n```"
    fixed = draft.replace("# Output: 7", "# Output: 6")
    ranked = {name: Verdict(**_fields(verdict_of(verifier, answer, message, drafted=["double"]))) for name, answer in (
        ("draft", draft), ("dropped", dropped), ("wrong", wrong), ("fixed", fixed))}  # fmt: skip
    assert ranked["draft"].summary == "1 of 2 checks fails"  # its own claim only
    assert ranked["wrong"].summary == "1 of 2 checks fails"  # the user's example
    # The renamed repair's own claim holds, but the user's example of `double` is still checked.
    assert ranked["dropped"].failing == {
        "check": ">>> double(2)  → 4",
        "detail": "NameError: name 'double' is not defined",
    }
    assert standing(ranked["fixed"]) > standing(ranked["draft"]) > standing(ranked["wrong"])
    assert standing(ranked["draft"]) > standing(ranked["dropped"])  # NameError: nothing ran
    # A repair that left out every claim (the test model echoed the request) was kept over a checked
    # draft and shown as "not checked".
    assert standing(ranked["draft"]) > standing(not_checked("the answer makes no claim that can be run"))

    request = repair_request(message, "def double(x):\n    return 2 * x", ranked["draft"], worse=ranked["dropped"])
    assert message in request and "def double(x):\n    return 2 * x" in request
    claim = "`print(double(3))  → 7` (a claim in the answer: the code or the claim is wrong): expected 7, got 6"
    assert claim in request
    assert "A correction tried before was worse" in request and "NameError: name 'double' is not defined" in request
    told = repair_request(message, "", ranked["wrong"])
    assert "(the user's own example: the code must do this): expected 4, got 5" in told


def _fields(verdict: dict) -> dict:
    return {k: v for k, v in verdict.items() if k != "summary"}


LONG_CODE = (
    "Repeat exactly this code and nothing else:\n```python\n"
    + "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))
    + "print(f1(1))  # Output: 2\n```"
)


def test_an_answer_cut_inside_its_code_under_a_roomy_limit_is_asked_again_whole(checked: ChatService) -> None:
    """The default model ran on repeating examples until the 1024-token limit and left its function
    unfinished; at a limit with room for a whole answer the model is asked for the code once more."""
    final = list(checked.complete([{"role": "user", "content": LONG_CODE}], TurnOptions(max_new_tokens=256)))[-1]
    assert final.stats["finish_reason"] == "length"  # the test model's echo is cut inside `def f17`
    assert final.stats["model_passes"] >= 2, "the cut answer went back to the model"
    assert final.verdict is not None and final.verdict["repairs"] >= 1


def test_the_next_attempt_follows_what_failed(verifier: Verifier) -> None:
    """Where the user's own example fails, the code is wrong: repair it, and every second round ask
    the question afresh. Where the user's examples pass and only the answer's own claims fail, the
    claims are what is false: the code stays (on the odd HumanEval problems such answers were right
    13 times of 15, and repairs rewrote right code into wrong)."""
    message = "Write `double(x)`:\n>>> double(2)\n4"
    claim_false = "```python\ndef double(x):\n    return 2 * x\n\nprint(double(3))  # Output: 7\n```"
    code_wrong = "```python\ndef double(x):\n    return 2 * x + 1\n```"
    no_example = "```python\ndef double(x):\n    return 2 * x\n\nprint(double(3))  # Output: 7\n```"
    false_claim = Verdict(**_fields(verdict_of(verifier, claim_false, message)))
    wrong_code = Verdict(**_fields(verdict_of(verifier, code_wrong, message)))
    unchecked_by_user = Verdict(**_fields(verdict_of(verifier, no_example, "Write `double(x)`.")))
    assert [next_attempt(false_claim, n, cut=False) for n in (1, 2)] == ["claims", "stop"]
    assert [next_attempt(wrong_code, n, cut=False) for n in (1, 2, 3)] == ["repair", "fresh", "repair"]
    assert next_attempt(unchecked_by_user, 2, cut=False) == "repair"
    assert next_attempt(false_claim, 1, cut=True) == "repair", "a cut answer is asked for its code whole"

    request = claims_request(message, claim_false, false_claim)
    assert claim_false in request and "expected 7, got 6" in request and "exactly the same code" in request
    assert same_code(claim_false, claim_false.replace("# Output: 7", "# Output: 6"))
    assert same_code(claim_false, claim_false.replace("return 2 * x", '"""Twice x."""\n    return 2 * x'))
    assert not same_code(claim_false, code_wrong)


def test_a_correction_of_false_claims_that_is_no_better_is_not_used(checked: ChatService) -> None:
    """Asked to correct its false claim, the test model gives no code, or code of its own: either way
    the draft, whose code did what the user's example asked, stays the answer, the attempt says why it
    was not used, and there is no second request (each rewrites the whole answer). (Which of the two
    the warm sample gives depends on what the shared engine evaluated before: alone it answers "No.",
    after this file's other tests it rewrote the function.)"""
    message = FALSE_CLAIM + "\n>>> add(1, 1)\n2"
    final = list(checked.complete([{"role": "user", "content": message}], TurnOptions(max_new_tokens=120)))[-1]
    assert "return a + b" in solution_code(final.text), "the code that passed the user's example is kept"
    assert final.verdict is not None and final.verdict["summary"] == "1 of 2 checks still fails after 1 repair"
    reasons = [a.get("rejected", "") for a in final.attempts]
    assert reasons in (["it gave no Python code"], ["it changed code that passes the user's examples"])
    assert final.stats["model_passes"] == 2

"""Practice mode with the real test model, a real Redis and the real sandbox: an exercise on the chat's
topic, hidden tests that are run but never shown, the hint ladder, and the record kept with the chat."""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing

import pytest
import redis

from chmocoder import export
from chmocoder.chat import ChatService, TurnOptions
from chmocoder.errors import Forbidden, InvalidInput
from chmocoder.practice import PracticeCoach, nearest_exercise, parse_exercise
from chmocoder.practice_set import PRACTICE_SET
from chmocoder.runner import CodeRunner
from chmocoder.sandbox import Sandbox
from chmocoder.store import chat_keys
from chmocoder.verify import Verifier

ME = "practice-owner-token-0123456789abcdef"
SOMEONE = "someone-else-token-0123456789abcdef"

WELL_FORMED = """TITLE: Double every number
TASK: Write `double_all(nums)`. It returns a new list with every number doubled.
FUNCTION: double_all
STARTER:
```python
def double_all(nums):
    pass
```
TESTS:
```python
assert double_all([1, 2]) == [2, 4]
assert double_all([]) == []
assert double_all([-3]) == [-6]
```
HINT: A list comprehension builds the new list in one line.
PSEUDOCODE:
for each n in nums: put 2 * n in the new list
SOLUTION:
```python
def double_all(nums):
    return [2 * n for n in nums]
```
"""


@pytest.fixture()
def coach(service: ChatService, sandbox: Sandbox) -> PracticeCoach:
    return PracticeCoach(service, Verifier(sandbox), CodeRunner(sandbox))


def a_chat(service: ChatService, question: str, level: str = "beginner") -> str:
    chat_id = service.new_chat("debug", level, owner=ME)
    options = TurnOptions(verify=False, max_new_tokens=24, temperature=0.0)
    with closing(service.send(chat_id, question, options)) as replies:
        list(replies)
    return chat_id


def test_every_built_in_exercise_is_solvable_and_its_starter_is_not(sandbox: Sandbox) -> None:
    # One sandbox run for the whole set: each solution, then each starter, against its hidden tests.
    program = EVERY_EXERCISE % json.dumps([[e.solution, e.starter, list(e.tests)] for e in PRACTICE_SET])
    result = sandbox.run(program)
    assert result.status == "ok", result.stderr
    failures = json.loads(result.stdout)
    assert [solution for solution, _ in failures] == [0] * len(PRACTICE_SET) and len(PRACTICE_SET) >= 10
    assert all(starter >= 1 for _, starter in failures), "a starter must not pass an exercise already"
    for exercise in PRACTICE_SET:
        assert exercise.function in exercise.starter and all(exercise.function in t for t in exercise.tests)


EVERY_EXERCISE = """
import json
import threading
import time
def failures(code, tests):
    failed = 0
    for test in tests:
        space = {}
        exec(code, space)
        try:
            exec(test, space)
        except Exception:
            failed += 1
    return failed
print(json.dumps([[failures(s, t), failures(b, t)] for s, b, t in json.loads(%r)]))
"""


def test_a_models_exercise_is_read_whatever_its_prose_and_code_start_with() -> None:
    # Lines that begin with a section's word ("Function returns…", `titled = …`) are not sections.
    tricky = WELL_FORMED.replace(
        "TASK: Write `double_all(nums)`. It returns a new list with every number doubled.",
        "TASK: Write `double_all(nums)`.\nFunction returns a new list; tests use small lists.",
    ).replace("    return [2 * n for n in nums]", "    titled = [2 * n for n in nums]\n    return titled")
    exercise = parse_exercise(tricky.replace("FUNCTION: double_all", "FUNCTION: def double_all(nums)"))
    assert exercise is not None and exercise.function == "double_all"
    assert exercise.task.endswith("tests use small lists.") and "return titled" in exercise.solution


def test_the_nearest_built_in_exercise_is_chosen_by_distinctive_words_not_common_ones() -> None:
    # "for" and "list" are in nearly every chat; they once chose "Sum of the even numbers" here.
    assert nearest_exercise("How do I reverse a list of words for printing?", set()).title == "Is it a palindrome?"
    assert nearest_exercise("Как работает рекурсия на примере факториала?", set()).function == "fib"
    assert nearest_exercise("Why does my average crash on an empty list?", {"average"}).function != "average"


def test_a_models_exercise_is_kept_only_if_its_solution_passes_its_own_tests(coach: PracticeCoach) -> None:
    exercise = parse_exercise(WELL_FORMED)
    assert exercise is not None and exercise.function == "double_all" and len(exercise.tests) == 3
    assert coach.vet(exercise) == (exercise, "")
    wrong = parse_exercise(WELL_FORMED.replace("return [2 * n", "return [3 * n"))
    assert coach.vet(wrong) == (None, "its solution fails its own tests")
    assert coach.vet(parse_exercise("TITLE: x\nTASK: y")) == (None, "not in the asked format")


def test_an_exercise_on_the_chats_topic_is_checked_hidden_and_kept(
    coach: PracticeCoach, service: ChatService, redis_client: redis.Redis
) -> None:
    chat_id = a_chat(service, "Why does my average function crash with ZeroDivisionError on an empty list?")
    entry = coach.start(chat_id, ME, "beginner")
    # The small test model does not write a usable exercise; the nearest built-in one is given, and says why.
    assert entry["title"] == "Average of a list" and entry["origin"] == "set" and entry["model_refused"]
    assert entry["code"].startswith("def average(nums):")

    starter = coach.check(chat_id, ME, entry["starter"])
    assert (starter.passed, starter.total, starter.solved) == (0, 4, False)
    half = "def average(nums):\n    return sum(nums) / len(nums)\n"
    partly = coach.check(chat_id, ME, half)
    assert (partly.passed, partly.solved) == (3, False)
    assert partly.message == "3 of 4 hidden tests pass. One of them raised ZeroDivisionError in your code. Keep going!"
    for test in entry["tests"]:
        assert test not in partly.message  # hidden: the learner is told counts, never the tests
    broken = coach.check(chat_id, ME, "def average(nums):\n    return sum(nums) / len(nums\n")
    assert broken.message.startswith("Your code does not run") and "SyntaxError: '(' was never closed" in broken.message

    assert coach.hint(chat_id, ME)["rung"] == 1
    solved = coach.check(chat_id, ME, "def average(nums):\n    return sum(nums) / len(nums) if nums else 0.0\n")
    assert (solved.passed, solved.solved, solved.message) == (4, True, "All 4 hidden tests pass. Solved!")

    # Kept with the chat, in its own hash, expiring with it; a new coach (another replica) reads it back.
    record = PracticeCoach(service, coach.verifier, coach.runner).record(chat_id)["exercises"][-1]
    assert (record["runs"], record["best"], record["solved"], record["solved_with"]) == (4, 4, True, "hint")
    meta_key = chat_keys(chat_id)[0]
    assert json.loads(redis_client.hget(meta_key, "practice"))["exercises"][0]["title"] == "Average of a list"
    assert 0 < redis_client.ttl(meta_key) <= service.store.ttl
    # Both exports say how it went, and neither gives the hidden tests or the solution away.
    meta, messages = service.chat(chat_id)
    exported = json.loads(export.to_json(meta, messages))["practice"]
    assert exported == [
        {
            "title": "Average of a list",
            "origin": "set",
            "started": exported[0]["started"],
            "runs": 4,
            "best": "4/4",
            "solved": True,
            "help": "hint",
        }
    ]
    markdown = export.to_markdown(meta, messages)
    assert "## Practice\n\n- **Average of a list**: solved (hint), 4 runs" in markdown
    assert "average([])" not in markdown and "if nums else 0.0" not in markdown
    # The next exercise is a new one, and the first stays in the record.
    assert coach.start(chat_id, ME, "beginner")["title"] != "Average of a list"
    assert len(coach.record(chat_id)["exercises"]) == 2


def test_the_hint_ladder_goes_hint_pseudocode_solution_then_stops(coach: PracticeCoach, service: ChatService) -> None:
    chat_id = a_chat(service, "How do I count how often each word appears, with a dict?", "intermediate")
    entry = coach.start(chat_id, ME, "intermediate")
    assert entry["title"] == "Count the words"
    assert [coach.hint(chat_id, ME)["rung"] for _ in range(3)] == [1, 2, 3]
    with pytest.raises(InvalidInput, match="the solution is already shown"):
        coach.hint(chat_id, ME)
    assert coach.check(chat_id, ME, entry["solution"]).solved
    assert coach.record(chat_id)["exercises"][-1]["solved_with"] == "solution"


def test_a_chat_in_russian_gets_its_exercise_in_russian(coach: PracticeCoach, service: ChatService) -> None:
    chat_id = a_chat(service, "Почему моя функция среднего значения падает на пустом списке?")
    entry = coach.start(chat_id, ME, "beginner")
    assert (entry["title"], entry["function"]) == ("Среднее значение списка", "average")
    assert entry["task"].startswith("Напишите `average(nums)`") and "пуст" in entry["hint"]
    assert coach.check(chat_id, ME, entry["solution"]).solved  # the same hidden tests


def test_a_wrong_answer_is_not_blamed_on_an_exception_the_code_did_not_raise(
    coach: PracticeCoach, service: ChatService
) -> None:
    chat_id = a_chat(service, "How do I reverse a string with slicing to check for a palindrome?")
    entry = coach.start(chat_id, ME, "beginner")
    assert entry["function"] == "is_palindrome"  # its tests are `assert f(x) is True`, not `==`
    wrong = coach.check(chat_id, ME, "def is_palindrome(text):\n    return False\n")
    assert wrong.message == "1 of 4 hidden tests pass. Keep going!" and not wrong.raised


def test_a_hint_taken_while_the_next_exercise_is_written_is_kept(coach: PracticeCoach, service: ChatService) -> None:
    chat_id = a_chat(service, "How do I count how often each word appears, with a dict?")
    coach.start(chat_id, ME, "beginner")
    writing = threading.Thread(target=coach.start, args=(chat_id, ME, "beginner"))
    writing.start()  # the model writes the next exercise for a few seconds
    time.sleep(0.3)
    assert coach.hint(chat_id, ME)["rung"] == 1
    assert writing.is_alive(), "the hint must land while the next exercise is being written"
    writing.join()
    first, second = coach.record(chat_id)["exercises"]
    assert (first["title"], first["rung"], second["rung"]) == ("Count the words", 1, 0)


def test_a_damaged_record_does_not_stop_the_chat_from_opening(
    coach: PracticeCoach, service: ChatService, redis_client: redis.Redis
) -> None:
    chat_id = a_chat(service, "How do I sum the even numbers of a list?")
    good = coach.start(chat_id, ME, "beginner")
    old = {k: v for k, v in good.items() if k not in ("rung", "runs", "best", "model_refused")} | {"solved": True}
    damaged = {"exercises": ["junk", {"title": "no tests"}, old | {"rung": 9}, good]}
    redis_client.hset(chat_keys(chat_id)[0], "practice", json.dumps(damaged))
    exercises = coach.record(chat_id)["exercises"]
    assert [(e["title"], e["rung"], e["runs"], e.get("solved_with")) for e in exercises] == [
        (good["title"], 3, 0, "solution"),
        (good["title"], 0, 0, None),
    ]
    meta, messages = service.chat(chat_id)
    assert len(json.loads(export.to_json(meta, messages))["practice"]) == 2
    redis_client.hset(chat_keys(chat_id)[0], "practice", "{not json")
    assert coach.record(chat_id) == {"exercises": []}


def test_practice_is_refused_clearly_where_it_does_not_apply(coach: PracticeCoach, service: ChatService) -> None:
    chat_id = a_chat(service, "What is a list comprehension?", "expert")
    with pytest.raises(InvalidInput, match="beginner and intermediate"):
        coach.start(chat_id, ME, "expert")
    with pytest.raises(Forbidden):
        coach.start(chat_id, SOMEONE, "beginner")
    with pytest.raises(InvalidInput, match="ask a question first"):
        coach.start("", ME, "beginner")
    with pytest.raises(InvalidInput, match="no exercise in this chat yet"):
        coach.check(chat_id, ME, "def f():\n    pass\n")
    entry = coach.start(chat_id, ME, "beginner")
    with pytest.raises(InvalidInput, match=f"must define the function {entry['function']}"):
        coach.check(chat_id, ME, "def something_else():\n    return 1\n")
    with pytest.raises(InvalidInput, match="no code to run"):
        coach.check(chat_id, ME, "  ")
    assert coach.record(chat_id)["exercises"][-1]["runs"] == 0, "a refused check is not counted"

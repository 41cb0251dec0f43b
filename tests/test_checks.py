"""Which claims of an answer and of the user's message become checks, and the diff of a fix.

These read text only; running the checks is tested against the real sandbox in test_verify.py.
"""

from __future__ import annotations

from chmocoder import checks as ck
from chmocoder.diffs import fix_diff
from chmocoder.verify import Plan, Verdict, plan

ANSWER = '''The loop skipped the first character. Fixed:

```python
import string

VOWELS = "aeiou"


def count_vowels(s):
    """Count the vowels in s.

    >>> count_vowels("hello")
    2
    """
    return sum(1 for c in s.lower() if c in VOWELS)


print(count_vowels("banana"))  # Output: 3
print(count_vowels("sky"))  # 0
print(count_vowels("Apple"))  # this shows the count
assert count_vowels("") == 0
count_vowels(None)  # raises TypeError
```
'''

BUG_REPORT = """`count_vowels("apple")` returns 1 instead of 2. Why?

```python
def count_vowels(s):
    return sum(1 for c in s[1:] if c in "aeiou")

print(count_vowels("apple"))
```
"""


def labels(checks: list[ck.Check]) -> list[str]:
    return [c.label for c in checks]


def test_the_answers_own_claims_become_checks() -> None:
    program = ck.parse_program(ck.python_blocks(ANSWER))
    by_label = {c.label: c for c in program.checks}
    assert by_label["print(count_vowels('banana'))  → 3"].want == "3"
    assert by_label["print(count_vowels('sky'))  → 0"].want == "0", "a bare literal comment is a claim"
    assert by_label['>>> count_vowels("hello")  → 2'].want == "2", "docstring examples are claims"
    assert by_label["assert count_vowels('') == 0"].kind == "equals"
    assert by_label["count_vowels(None) raises TypeError"].want == "TypeError"
    # A comment that states nothing checkable is not a claim: that line only has to run.
    runs = by_label["the example code runs without an error"]
    assert runs.source == "print(count_vowels('Apple'))"


def test_the_solution_keeps_definitions_and_drops_example_calls() -> None:
    solution = ck.solution_code(ANSWER)
    assert solution.startswith("import string\n")
    assert 'VOWELS = "aeiou"' in solution and "def count_vowels(s):" in solution
    assert ">>> count_vowels" in solution, "the function keeps its docstring as written"
    assert "print(" not in solution and "assert" not in solution


def test_the_users_example_and_original_code_make_checks_for_a_bug_report() -> None:
    work = plan(ANSWER, BUG_REPORT, "debug")
    assert isinstance(work, Plan)
    user = [c for c in work.checks if c.origin == "user"]
    assert labels(user) == ['count_vowels("apple") == 2'], "'returns 1 instead of 2' expects 2"
    assert user[0].against_original, "a bug report's example is run on the user's code too"
    assert "s[1:]" in work.original


def test_a_pasted_traceback_names_the_error_that_must_be_gone() -> None:
    report = (
        "It crashes:\n```python\ndef first(xs):\n    return xs[0]\n\nprint(first([]))\n```\n"
        '```\nTraceback (most recent call last):\n  File "a.py", line 4, in <module>\nIndexError: list index '
        "out of range\n```"
    )
    answer = "```python\ndef first(xs):\n    return xs[0] if xs else None\n```"
    assert ck.reported_error(report) == "IndexError"
    work = plan(answer, report, "debug")
    assert isinstance(work, Plan)
    gone = [c for c in work.checks if c.kind == "not_raises"]
    assert len(gone) == 1 and gone[0].source == "print(first([]))" and gone[0].want == "IndexError"


def test_code_that_needs_the_outside_world_is_not_checked_and_says_why() -> None:
    cases = {
        "```python\nimport requests\nprint(requests.get('https://example.org').text)\n```": "the network",
        "```python\nwith open('data.txt') as f:\n    print(f.read())\n```": "reads or writes files",
        "```python\nimport numpy as np\nprint(np.zeros(3))\n```": "the package numpy",
    }
    for answer, why in cases.items():
        verdict = plan(answer, "", "write")
        assert isinstance(verdict, Verdict) and verdict.status == "not_checked"
        assert why in verdict.summary, verdict.summary


def test_an_answer_without_python_has_nothing_to_check() -> None:
    verdict = plan("Use `git rebase -i`:\n```bash\ngit rebase -i HEAD~3\n```", "", "write")
    assert isinstance(verdict, Verdict) and verdict.summary == "not checked: the answer has no Python code"


def test_the_fix_is_shown_as_a_diff_of_the_users_code() -> None:
    diff = fix_diff(BUG_REPORT, ANSWER)
    assert diff.startswith("\n\n**Changes to your code**\n```diff\n--- your code\n+++ the fix\n")
    assert '-    return sum(1 for c in s[1:] if c in "aeiou")' in diff
    assert "+    return sum(1 for c in s.lower() if c in VOWELS)" in diff
    assert fix_diff("no code here", ANSWER) == ""
    assert fix_diff(BUG_REPORT, "```python\nprint('something else entirely')\n```") == "", "new code, no diff"


def test_an_answer_cut_off_mid_code_keeps_its_whole_statements_and_says_where_it_broke() -> None:
    cut = (
        "```python\ndef double(x):\n    return 2 * x\n\n\ndef check():\n    assert double(2) == 4\n"
        "    assert double('ab') == 'abab\n```"
    )
    program = ck.parse_program(ck.python_blocks(cut))
    assert program.solution == "def double(x):\n    return 2 * x"
    assert program.syntax_error == "line 7: unterminated string literal (detected at line 7)"
    work = plan(cut, "", "write")
    assert isinstance(work, Plan) and work.syntax_error, "the break is reported, not dropped"


def test_examples_in_a_docstring_the_user_pasted_are_the_users_checks() -> None:
    """The whole message went to doctest at once, which gave up on its differently indented lines:
    the examples of a function the user asked to have written were checked only if the answer copied
    them, and then counted as the answer's own claims, the first to be doubted."""
    message = (
        "Complete this Python function:\n```python\ndef sort_even(l: list):\n"
        '    """Sort the values at even indices.\n    >>> sort_even([1, 2, 3])\n    [1, 2, 3]\n'
        '    >>> sort_even([5, 6, 3, 4])\n    [3, 6, 5, 4]\n    """\n```\nAnd `sort_even([])` should return [].'
    )
    found = ck.user_checks(message, ["sort_even"], "")
    assert [(c.label, c.origin) for c in found] == [
        (">>> sort_even([1, 2, 3])  → [1, 2, 3]", "user"),
        (">>> sort_even([5, 6, 3, 4])  → [3, 6, 5, 4]", "user"),
        ("sort_even([]) == []", "user"),
    ]
    answer = "```python\ndef sort_even(l):\n    return l\n```"
    work = plan(answer, message, "write")
    assert isinstance(work, Plan) and [c.origin for c in work.checks] == ["user", "user", "user"]


def test_examples_written_with_arrows_or_an_equals_sign_are_the_users_checks() -> None:
    """Users (and many docstrings) write examples as `f(x) ==> y`, `f(x) ➞ y` or `f(x) = y`: left
    unread, the only checks were the answer's own claims, which the default model often gets wrong."""
    message = (
        'Write it:\n```python\ndef f(s, n):\n    """Examples:\n    f("Mary had a lamb", 4) ==> ["Mary"]\n'
        "    f('', 4) ➞ []\n    f('ab', 1) = ['ab']\n    \"\"\"\n```"
    )
    assert labels(ck.user_checks(message, ["f"], "")) == [
        'f("Mary had a lamb", 4) == ["Mary"]',
        "f('', 4) == []",
        "f('ab', 1) == ['ab']",
    ]
    assert labels(ck.user_checks("x = f(3)\nf(2) == 4", ["f"], "")) == ["f(2) == 4"], "an assignment is no claim"


def test_an_example_that_goes_on_computing_is_not_read_as_its_first_number() -> None:
    """ "f([1, 3, 2, 0]) == 1 + 9 + 0 + 0 = 10" was read as "f([1, 3, 2, 0]) == 1", and correct code failed it."""
    message = "For example:\nf([1, 3, 2, 0]) == 1 + 9 + 0 + 0 = 10\nf([9, -2]) == 81"
    assert labels(ck.user_checks(message, ["f"], "")) == ["f([9, -2]) == 81"]


def test_a_docstring_example_is_read_as_meant() -> None:
    """Read as Python reads a docstring that is not raw, an example's "a\\nb" became a line break
    that cut the example in two, and a correct answer failed its own copy of the user's example.
    Written for doctest (with "a\\\\nb"), it is read as doctest reads it."""

    def labels_of(docstring_lines: str) -> list[str]:
        answer = f'```python\ndef strip_b(s):\n    """Drop the b.\n{docstring_lines}    """\n    return s\n```'
        return [c.label for c in ck.parse_program(ck.python_blocks(answer)).checks]

    assert labels_of("    >>> strip_b('a\\nb')\n    'a\\n'\n") == [">>> strip_b('a\\nb')  → 'a\\n'"]
    assert labels_of("    >>> strip_b('a\\\\nb')\n    'a\\\\n'\n") == [">>> strip_b('a\\nb')  → 'a\\n'"]


def test_a_bug_reports_words_say_what_is_wanted_not_what_the_bug_does() -> None:
    """Read as wanted values, these reports checked correct fixes against the bug's own output
    ('to_fahrenheit(100) == 3380.0'), and repairs chased them."""
    code = "\n```python\ndef f(x):\n    return x\n```"
    reports = {
        "`f(100)` gives 3380.0 but 100 °C is 212 °F.": [],
        "`f('a b a')` returns {'a': 1, 'b': 1} but 'a' appears twice.": [],
        "`f('b')` after `f('a')` returns ['a', 'b'] instead of ['b'].": [],  # a sequence, not one call
        "`f(3)` should return 6 but it returns 3.": ["f(3) == 6"],
        "f(n) should return the n-th number with f(0) = 0, but `f(5)` returns 8 instead of 5.": ["f(5) == 5"],
    }
    for report, wanted in reports.items():
        assert labels(ck.user_checks(report + code, ["f"], "def f(x):\n    return x")) == wanted, report
    assert labels(ck.user_checks("`f(100)` gives 212.0.", ["f"], "")) == ["f(100) == 212.0"]  # a request, not a report

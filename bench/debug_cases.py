# ruff: noqa: E501 - test data: each string is one line of a user's message or code
"""The debug set: small buggy functions written for ChMOCoder, as a user would report them.

Each case has the message sent with the task "debug" (the buggy code in a Python block), the
function's name, what kind of report it is, a reference fix, and hidden tests (`check(candidate)`)
that the model never sees. The fix passes them and the bug fails them (tests/test_quality_sets.py
proves it for every case). Kinds, because verification can use the first two and not the third:
- example: a concrete call and what it returns instead of what it should;
- traceback: the error it raises, pasted;
- description: only the symptom in words, nothing runnable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["example", "traceback", "description"]


@dataclass(frozen=True)
class DebugCase:
    id: str
    entry: str
    kind: Kind
    buggy: str
    fixed: str
    tests: str
    symptom: str  # the user's words before the code; {code} marks where the code goes if not at the end

    @property
    def message(self) -> str:
        block = f"```python\n{self.buggy.strip()}\n```"
        return self.symptom.replace("{code}", block) if "{code}" in self.symptom else f"{self.symptom}\n\n{block}"


def case(id: str, entry: str, kind: Kind, symptom: str, buggy: str, fixed: str, tests: str) -> DebugCase:  # noqa: A002
    return DebugCase(id, entry, kind, buggy.strip("\n"), fixed.strip("\n"), tests.strip("\n"), symptom.strip())


CASES: list[DebugCase] = [
    case(
        "sum-to-n-off-by-one",
        "sum_to",
        "example",
        "`sum_to(3)` should return 6 (1 + 2 + 3) but it returns 3. What's wrong?",
        "def sum_to(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total",
        "def sum_to(n):\n    total = 0\n    for i in range(1, n + 1):\n        total += i\n    return total",
        "def check(f):\n    assert f(3) == 6\n    assert f(1) == 1\n    assert f(0) == 0\n    assert f(10) == 55",
    ),
    case(
        "average-empty",
        "average",
        "traceback",
        "My average function crashes on an empty list:\n{code}\n```\nTraceback (most recent call last):\n"
        '  File "avg.py", line 4, in <module>\n    print(average([]))\n  File "avg.py", line 2, in average\n'
        "    return sum(xs) / len(xs)\nZeroDivisionError: division by zero\n```\nIt should return 0.0 for an empty list.",
        "def average(xs):\n    return sum(xs) / len(xs)\n\nprint(average([]))",
        "def average(xs):\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)",
        "def check(f):\n    assert f([]) == 0.0\n    assert f([2, 4]) == 3.0\n    assert f([5]) == 5.0",
    ),
    case(
        "mutable-default",
        "add_item",
        "example",
        "Each call of `add_item` should start from a fresh list unless I pass one, but `add_item('b')` after "
        "`add_item('a')` returns ['a', 'b'] instead of ['b'].",
        "def add_item(item, items=[]):\n    items.append(item)\n    return items",
        "def add_item(item, items=None):\n    if items is None:\n        items = []\n    items.append(item)\n    return items",
        "def check(f):\n    assert f('a') == ['a']\n    assert f('b') == ['b']\n    assert f('c', ['x']) == ['x', 'c']",
    ),
    case(
        "is-even-modulo",
        "is_even",
        "example",
        "`is_even(4)` returns False instead of True. Why?",
        "def is_even(n):\n    return n % 2 == 1",
        "def is_even(n):\n    return n % 2 == 0",
        "def check(f):\n    assert f(4) is True\n    assert f(7) is False\n    assert f(0) is True\n    assert f(-2) is True",
    ),
    case(
        "factorial-base-case",
        "factorial",
        "traceback",
        "factorial(0) should be 1 but my function never finishes for it:\n{code}\n"
        "```\nRecursionError: maximum recursion depth exceeded\n```",
        "def factorial(n):\n    if n == 1:\n        return 1\n    return n * factorial(n - 1)",
        "def factorial(n):\n    if n <= 1:\n        return 1\n    return n * factorial(n - 1)",
        "def check(f):\n    assert f(0) == 1\n    assert f(1) == 1\n    assert f(5) == 120",
    ),
    case(
        "max-of-negatives",
        "largest",
        "example",
        "`largest([-5, -2, -9])` returns 0 instead of -2.",
        "def largest(numbers):\n    best = 0\n    for n in numbers:\n        if n > best:\n            best = n\n    return best",
        "def largest(numbers):\n    best = numbers[0]\n    for n in numbers[1:]:\n        if n > best:\n            best = n\n    return best",
        "def check(f):\n    assert f([-5, -2, -9]) == -2\n    assert f([1, 3, 2]) == 3\n    assert f([7]) == 7",
    ),
    case(
        "reverse-words",
        "reverse_words",
        "example",
        "reverse_words should reverse the order of the words: `reverse_words('hello big world')` should give "
        "'world big hello', but I get the letters reversed: 'dlrow gib olleh'.",
        "def reverse_words(sentence):\n    return sentence[::-1]",
        "def reverse_words(sentence):\n    return ' '.join(sentence.split()[::-1])",
        "def check(f):\n    assert f('hello big world') == 'world big hello'\n    assert f('one') == 'one'\n"
        "    assert f('a b') == 'b a'",
    ),
    case(
        "count-vowels-skip-first",
        "count_vowels",
        "example",
        "`count_vowels('apple')` returns 1 instead of 2.",
        "def count_vowels(s):\n    count = 0\n    for c in s[1:]:\n        if c in 'aeiou':\n            count += 1\n"
        "    return count",
        "def count_vowels(s):\n    count = 0\n    for c in s:\n        if c in 'aeiou':\n            count += 1\n"
        "    return count",
        "def check(f):\n    assert f('apple') == 2\n    assert f('sky') == 0\n    assert f('aeiou') == 5\n"
        "    assert f('') == 0",
    ),
    case(
        "remove-while-iterating",
        "remove_negatives",
        "description",
        "remove_negatives should drop every negative number, but when two negative numbers are next to each "
        "other, one of them stays in the list. Can you fix it?",
        "def remove_negatives(numbers):\n    for n in numbers:\n        if n < 0:\n            numbers.remove(n)\n"
        "    return numbers",
        "def remove_negatives(numbers):\n    return [n for n in numbers if n >= 0]",
        "def check(f):\n    assert f([-1, -2, 3]) == [3]\n    assert f([1, 2]) == [1, 2]\n    assert f([-4, -5, -6]) == []\n"
        "    assert f([0, -1, 5, -7]) == [0, 5]",
    ),
    case(
        "sort-by-age",
        "oldest_first",
        "description",
        "oldest_first should sort people by age, oldest first, but the order is alphabetical by name.",
        "def oldest_first(people):\n    # people: list of (name, age) tuples\n    return sorted(people, reverse=True)",
        "def oldest_first(people):\n    return sorted(people, key=lambda p: p[1], reverse=True)",
        "def check(f):\n    assert f([('Ann', 30), ('Bob', 40)]) == [('Bob', 40), ('Ann', 30)]\n"
        "    assert f([('Zed', 20), ('Amy', 50), ('Kim', 35)]) == [('Amy', 50), ('Kim', 35), ('Zed', 20)]",
    ),
    case(
        "missing-return",
        "square_all",
        "example",
        "`square_all([1, 2, 3])` returns None instead of [1, 4, 9].",
        "def square_all(numbers):\n    result = []\n    for n in numbers:\n        result.append(n * n)",
        "def square_all(numbers):\n    result = []\n    for n in numbers:\n        result.append(n * n)\n    return result",
        "def check(f):\n    assert f([1, 2, 3]) == [1, 4, 9]\n    assert f([]) == []\n    assert f([-2]) == [4]",
    ),
    case(
        "early-return-in-loop",
        "all_positive",
        "description",
        "all_positive says True for lists with negative numbers in them, as long as the first number is positive.",
        "def all_positive(numbers):\n    for n in numbers:\n        if n > 0:\n            return True\n"
        "        return False\n    return True",
        "def all_positive(numbers):\n    for n in numbers:\n        if n <= 0:\n            return False\n    return True",
        "def check(f):\n    assert f([1, -2, 3]) is False\n    assert f([1, 2, 3]) is True\n    assert f([]) is True\n"
        "    assert f([0]) is False",
    ),
    case(
        "integer-division",
        "mean",
        "example",
        "`mean([1, 2])` returns 1 instead of 1.5.",
        "def mean(values):\n    return sum(values) // len(values)",
        "def mean(values):\n    return sum(values) / len(values)",
        "def check(f):\n    assert f([1, 2]) == 1.5\n    assert f([4]) == 4\n    assert f([1, 2, 3, 4]) == 2.5",
    ),
    case(
        "string-is-compare",
        "same_word",
        "example",
        "same_word sometimes says two equal words are different, e.g. when one was built with ''.join. "
        "`same_word('hello', ''.join(['hel', 'lo']))` returns False.",
        "def same_word(a, b):\n    return a is b",
        "def same_word(a, b):\n    return a == b",
        "def check(f):\n    assert f('hello', ''.join(['hel', 'lo'])) is True\n    assert f('a', 'b') is False\n"
        "    assert f('x' * 3, 'xxx') is True",
    ),
    case(
        "range-step",
        "evens_up_to",
        "example",
        "evens_up_to(10) should list the even numbers from 0 to 10 inclusive, but I get [0, 3, 6, 9].",
        "def evens_up_to(n):\n    return list(range(0, n, 3))",
        "def evens_up_to(n):\n    return list(range(0, n + 1, 2))",
        "def check(f):\n    assert f(10) == [0, 2, 4, 6, 8, 10]\n    assert f(0) == [0]\n    assert f(5) == [0, 2, 4]",
    ),
    case(
        "fizzbuzz-order",
        "fizzbuzz",
        "example",
        "`fizzbuzz(15)` returns 'Fizz' instead of 'FizzBuzz'.",
        "def fizzbuzz(n):\n    if n % 3 == 0:\n        return 'Fizz'\n    elif n % 5 == 0:\n        return 'Buzz'\n"
        "    elif n % 15 == 0:\n        return 'FizzBuzz'\n    return str(n)",
        "def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    if n % 3 == 0:\n        return 'Fizz'\n"
        "    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)",
        "def check(f):\n    assert f(15) == 'FizzBuzz'\n    assert f(9) == 'Fizz'\n    assert f(10) == 'Buzz'\n"
        "    assert f(7) == '7'",
    ),
    case(
        "palindrome-case",
        "is_palindrome",
        "description",
        "is_palindrome should ignore upper and lower case, but a word that starts with a capital letter is never "
        "a palindrome for it.",
        "def is_palindrome(word):\n    return word == word[::-1]",
        "def is_palindrome(word):\n    w = word.lower()\n    return w == w[::-1]",
        "def check(f):\n    assert f('Racecar') is True\n    assert f('level') is True\n    assert f('Python') is False",
    ),
    case(
        "first-index-error",
        "first_word",
        "traceback",
        "This crashes for an empty string; it should return '' then.\n{code}\n```\nTraceback (most recent call "
        'last):\n  File "w.py", line 4, in <module>\n    first_word(\'\')\n  File "w.py", line 2, in first_word\n'
        "    return text.split()[0]\nIndexError: list index out of range\n```",
        "def first_word(text):\n    return text.split()[0]\n\nfirst_word('')",
        "def first_word(text):\n    words = text.split()\n    return words[0] if words else ''",
        "def check(f):\n    assert f('') == ''\n    assert f('hello world') == 'hello'\n    assert f('   spaced  out') == 'spaced'",
    ),
    case(
        "dict-counter-overwrite",
        "word_counts",
        "example",
        "`word_counts('a b a')` returns {'a': 1, 'b': 1} but 'a' appears twice.",
        "def word_counts(text):\n    counts = {}\n    for word in text.split():\n        counts[word] = 1\n    return counts",
        "def word_counts(text):\n    counts = {}\n    for word in text.split():\n        counts[word] = counts.get(word, 0) + 1\n"
        "    return counts",
        "def check(f):\n    assert f('a b a') == {'a': 2, 'b': 1}\n    assert f('') == {}\n    assert f('x x x') == {'x': 3}",
    ),
    case(
        "celsius-precedence",
        "to_fahrenheit",
        "example",
        "`to_fahrenheit(100)` gives 3380.0 but 100 °C is 212 °F.",
        "def to_fahrenheit(celsius):\n    return celsius * (9 / 5 + 32)",
        "def to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32",
        "def check(f):\n    assert f(100) == 212\n    assert f(0) == 32\n    assert f(-40) == -40",
    ),
    case(
        "binary-search-bounds",
        "find",
        "example",
        "My binary search never finds the last element: `find([1, 3, 5, 7], 7)` returns -1 instead of 3.",
        "def find(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo < hi:\n        mid = (lo + hi) // 2\n"
        "        if items[mid] == target:\n            return mid\n        if items[mid] < target:\n            lo = mid + 1\n"
        "        else:\n            hi = mid - 1\n    return -1",
        "def find(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo <= hi:\n        mid = (lo + hi) // 2\n"
        "        if items[mid] == target:\n            return mid\n        if items[mid] < target:\n            lo = mid + 1\n"
        "        else:\n            hi = mid - 1\n    return -1",
        "def check(f):\n    assert f([1, 3, 5, 7], 7) == 3\n    assert f([1, 3, 5, 7], 1) == 0\n    assert f([1, 3, 5, 7], 4) == -1\n"
        "    assert f([2], 2) == 0\n    assert f([], 1) == -1",
    ),
    case(
        "shadowed-builtin",
        "total_length",
        "traceback",
        "total_length should add up the lengths of the strings, but it crashes:\n{code}\n```\nTypeError: 'int' "
        "object is not callable\n```",
        "def total_length(words):\n    len = 0\n    for w in words:\n        len += len(w)\n    return len",
        "def total_length(words):\n    total = 0\n    for w in words:\n        total += len(w)\n    return total",
        "def check(f):\n    assert f(['ab', 'cde']) == 5\n    assert f([]) == 0\n    assert f(['']) == 0",
    ),
    case(
        "fibonacci-wrong-start",
        "fib",
        "example",
        "fib(n) should return the n-th Fibonacci number with fib(0) = 0 and fib(1) = 1, but `fib(5)` "
        "returns 8 instead of 5.",
        "def fib(n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "def check(f):\n    assert f(0) == 0\n    assert f(1) == 1\n    assert f(5) == 5\n    assert f(10) == 55",
    ),
    case(
        "chunk-drops-tail",
        "chunks",
        "description",
        "chunks should split a list into pieces of size n, keeping a shorter last piece, but when the length is "
        "not a multiple of n the leftover items are lost.",
        "def chunks(items, n):\n    return [items[i:i + n] for i in range(0, len(items) - n + 1, n)]",
        "def chunks(items, n):\n    return [items[i:i + n] for i in range(0, len(items), n)]",
        "def check(f):\n    assert f([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]\n    assert f([1, 2], 2) == [[1, 2]]\n"
        "    assert f([], 3) == []",
    ),
    case(
        "leap-year",
        "is_leap",
        "description",
        "is_leap says 1900 is a leap year, but it is not (divisible by 100 and not by 400).",
        "def is_leap(year):\n    return year % 4 == 0",
        "def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
        "def check(f):\n    assert f(1900) is False\n    assert f(2000) is True\n    assert f(2024) is True\n"
        "    assert f(2023) is False",
    ),
    case(
        "dedupe-order",
        "dedupe",
        "description",
        "dedupe should remove duplicates and keep the items in the order they first appear, but it shuffles "
        "them around. What's wrong?",
        "def dedupe(items):\n    return sorted(set(items))",
        "def dedupe(items):\n    seen = set()\n    out = []\n    for x in items:\n        if x not in seen:\n"
        "            seen.add(x)\n            out.append(x)\n    return out",
        "def check(f):\n    assert f([3, 1, 3, 2]) == [3, 1, 2]\n    assert f([]) == []\n    assert f(['b', 'a', 'b']) == ['b', 'a']",
    ),
    case(
        "dict-delete-while-iterating",
        "drop_empty",
        "traceback",
        "drop_empty should remove the settings whose value is empty, but it crashes:\n{code}\n```\nTraceback "
        "(most recent call last):\n  File \"cfg.py\", line 8, in <module>\n    drop_empty({'name': 'x', 'tags': [], "
        "'note': ''})\n  File \"cfg.py\", line 2, in drop_empty\n    for key in settings:\n"
        "RuntimeError: dictionary changed size during iteration\n```",
        "def drop_empty(settings):\n    for key in settings:\n        if not settings[key]:\n            del settings[key]\n"
        "    return settings\n\n\ndrop_empty({'name': 'x', 'tags': [], 'note': ''})",
        "def drop_empty(settings):\n    for key in list(settings):\n        if not settings[key]:\n"
        "            del settings[key]\n    return settings",
        "def check(f):\n    assert f({'name': 'x', 'tags': [], 'note': ''}) == {'name': 'x'}\n    assert f({}) == {}\n"
        "    assert f({'a': 0, 'b': 1}) == {'b': 1}\n    assert f({'a': None}) == {}",
    ),
    case(
        "shadowed-parameter",
        "count_matches",
        "example",
        "count_matches should count the words equal to target, ignoring case, but "
        "`count_matches(['a', 'B', 'b'], 'b')` returns 3 instead of 2.",
        "def count_matches(words, target):\n    count = 0\n    for word in words:\n        target = word.lower()\n"
        "        if word.lower() == target:\n            count += 1\n    return count",
        "def count_matches(words, target):\n    wanted = target.lower()\n    count = 0\n    for word in words:\n"
        "        if word.lower() == wanted:\n            count += 1\n    return count",
        "def check(f):\n    assert f(['a', 'B', 'b'], 'b') == 2\n    assert f([], 'x') == 0\n"
        "    assert f(['Cat', 'dog'], 'CAT') == 1\n    assert f(['x', 'y'], 'z') == 0",
    ),
    case(
        "extension-slice",
        "extension",
        "example",
        "`extension('archive.tar.gz')` returns 'tar.gz', but I only want the last part, 'gz'. A name without a "
        "dot should give ''.",
        "def extension(filename):\n    return filename[filename.find('.') + 1:]",
        "def extension(filename):\n    if '.' not in filename:\n        return ''\n"
        "    return filename[filename.rfind('.') + 1:]",
        "def check(f):\n    assert f('archive.tar.gz') == 'gz'\n    assert f('notes.txt') == 'txt'\n    assert f('README') == ''",
    ),
    case(
        "grade-boundary",
        "grade",
        "description",
        "My grade function gives a B to students who scored exactly 90, but 90 and above is an A, 80 and above "
        "a B, anything else a C.",
        "def grade(score):\n    if score > 90:\n        return 'A'\n    elif score > 80:\n        return 'B'\n"
        "    return 'C'",
        "def grade(score):\n    if score >= 90:\n        return 'A'\n    elif score >= 80:\n        return 'B'\n"
        "    return 'C'",
        "def check(f):\n    assert f(90) == 'A'\n    assert f(97) == 'A'\n    assert f(80) == 'B'\n    assert f(89) == 'B'\n"
        "    assert f(79) == 'C'",
    ),
    case(
        "concat-int",
        "describe",
        "traceback",
        "`describe('Ann', 30)` crashes with `TypeError: can only concatenate str (not \"int\") to str`. It should "
        "give 'Ann is 30 years old'.",
        "def describe(name, age):\n    return name + ' is ' + age + ' years old'",
        "def describe(name, age):\n    return f'{name} is {age} years old'",
        "def check(f):\n    assert f('Ann', 30) == 'Ann is 30 years old'\n    assert f('Bo', 7) == 'Bo is 7 years old'",
    ),
]

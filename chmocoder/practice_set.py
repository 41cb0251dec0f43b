"""The built-in practice set: small exercises, each with hidden tests that its own solution passes.

Practice asks the model for an exercise on what the chat was about first; a small model often
writes one whose solution fails its own tests, and then an exercise from here on the nearest topic
is given instead (and says so). `words` are the beginnings of the words a chat mentions when it is near
an exercise: distinctive ones ("palindrom", "zerodivision"), not words every chat has ("list", "for").
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Exercise:
    """One exercise. `tests` are assert statements the learner never sees; `solution` passes them."""

    title: str
    task: str
    function: str
    starter: str
    tests: tuple[str, ...]
    hint: str
    pseudocode: str
    solution: str
    origin: str = "set"  # "model": written for this chat; "set": from PRACTICE_SET
    words: tuple[str, ...] = field(default=(), compare=False)


def _exercise(
    title: str, task: str, signature: str, tests: str, hint: str, pseudocode: str, solution: str, words: str
) -> Exercise:
    function = signature.split("(", 1)[0]
    starter = f"def {signature}:\n    # Write your code here.\n    pass\n"
    return Exercise(
        title,
        task,
        function,
        starter,
        tuple(line.strip() for line in tests.strip().splitlines()),
        hint,
        textwrap.dedent(pseudocode).strip(),
        solution.strip() + "\n",
        words=tuple(words.split()),
    )


PRACTICE_SET: tuple[Exercise, ...] = (
    _exercise(
        "Sum of the even numbers",
        "Write `sum_of_evens(nums)`: it takes a list of integers and returns the sum of the even ones "
        "(0 for an empty list).",
        "sum_of_evens(nums)",
        """
        assert sum_of_evens([1, 2, 3, 4]) == 6
        assert sum_of_evens([]) == 0
        assert sum_of_evens([1, 3, 5]) == 0
        assert sum_of_evens([-2, 7, 10]) == 8
        """,
        "A number is even when dividing it by 2 leaves no remainder: `n % 2 == 0`.",
        """
        total = 0
        for each number n in nums:
            if n is even: add n to total
        return total
        """,
        """
def sum_of_evens(nums):
    total = 0
    for n in nums:
        if n % 2 == 0:
            total += n
    return total
        """,
        "loop iterat even odd sum total integer",
    ),
    _exercise(
        "Average of a list",
        "Write `average(nums)`: it returns the mean of a list of numbers, and 0.0 for an empty list "
        "instead of crashing.",
        "average(nums)",
        """
        assert average([1, 2, 3, 4]) == 2.5
        assert average([]) == 0.0
        assert average([5]) == 5.0
        assert average([-1, 1]) == 0.0
        """,
        "Dividing by `len(nums)` fails when the list is empty: check for that case first.",
        """
        if nums is empty: return 0.0
        return the sum of nums divided by how many there are
        """,
        """
def average(nums):
    if not nums:
        return 0.0
    return sum(nums) / len(nums)
        """,
        "average avg mean zerodivision divis divid empty",
    ),
    _exercise(
        "Safe division",
        "Write `safe_divide(a, b)`: it returns `a / b`, or `None` when `b` is zero, without raising.",
        "safe_divide(a, b)",
        """
        assert safe_divide(6, 3) == 2
        assert safe_divide(1, 0) is None
        assert safe_divide(0, 5) == 0
        assert safe_divide(7, 2) == 3.5
        """,
        "Either test `b == 0` before dividing, or catch `ZeroDivisionError` with try/except.",
        """
        try:
            return a divided by b
        if that raised ZeroDivisionError:
            return None
        """,
        """
def safe_divide(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        return None
        """,
        "exception try except raise handl valueerror zerodivision",
    ),
    _exercise(
        "The last item, safely",
        "Write `last_item(items)`: it returns the last element of a list, or `None` when the list is empty.",
        "last_item(items)",
        """
        assert last_item([1, 2, 3]) == 3
        assert last_item([]) is None
        assert last_item(["a"]) == "a"
        assert last_item([[1], [2]]) == [2]
        """,
        "`items[-1]` is the last element, but it raises IndexError on an empty list.",
        """
        if items is empty: return None
        return items[-1]
        """,
        """
def last_item(items):
    if not items:
        return None
    return items[-1]
        """,
        "index element last append",
    ),
    _exercise(
        "Count the vowels",
        "Write `count_vowels(text)`: it returns how many vowels (a, e, i, o, u, in either case) the string has.",
        "count_vowels(text)",
        """
        assert count_vowels("hello") == 2
        assert count_vowels("") == 0
        assert count_vowels("AEIOU") == 5
        assert count_vowels("rhythm") == 0
        """,
        "Go through the string one character at a time and compare its lower-case form with 'aeiou'.",
        """
        count = 0
        for each character c in text:
            if c in lower case is one of a, e, i, o, u: add 1 to count
        return count
        """,
        """
def count_vowels(text):
    return sum(1 for c in text.lower() if c in "aeiou")
        """,
        "string str charact letter vowel lower upper",
    ),
    _exercise(
        "Is it a palindrome?",
        "Write `is_palindrome(text)`: it returns True when the text reads the same backwards, ignoring "
        "case and spaces.",
        "is_palindrome(text)",
        """
        assert is_palindrome("racecar") is True
        assert is_palindrome("Never odd or even") is True
        assert is_palindrome("python") is False
        assert is_palindrome("") is True
        """,
        "First make a cleaned copy: lower case, spaces removed. Then compare it with its reverse, `s[::-1]`.",
        """
        cleaned = text in lower case, without spaces
        return whether cleaned equals cleaned reversed
        """,
        """
def is_palindrome(text):
    cleaned = text.lower().replace(" ", "")
    return cleaned == cleaned[::-1]
        """,
        "palindrom revers slic",
    ),
    _exercise(
        "Count the words",
        "Write `word_counts(text)`: it returns a dict from each word (lower-cased) to how many times it "
        "appears; words are separated by spaces.",
        "word_counts(text)",
        """
        assert word_counts("a b a") == {"a": 2, "b": 1}
        assert word_counts("") == {}
        assert word_counts("Hi hi HI") == {"hi": 3}
        assert word_counts("one") == {"one": 1}
        """,
        "`text.split()` gives the words; a dict's `get(word, 0)` gives the count so far.",
        """
        counts = an empty dict
        for each word in text split on spaces:
            w = word in lower case
            counts[w] = counts so far for w, plus 1
        return counts
        """,
        """
def word_counts(text):
    counts = {}
    for word in text.split():
        word = word.lower()
        counts[word] = counts.get(word, 0) + 1
    return counts
        """,
        "dict key value count word split",
    ),
    _exercise(
        "Fibonacci numbers",
        "Write `fib(n)`: it returns the n-th Fibonacci number, where fib(0) is 0, fib(1) is 1, and each "
        "next one is the sum of the two before it.",
        "fib(n)",
        """
        assert fib(0) == 0
        assert fib(1) == 1
        assert fib(10) == 55
        assert fib(20) == 6765
        """,
        "Keep the last two numbers in two variables and move them forward n times.",
        """
        a, b = 0, 1
        repeat n times:
            a, b = b, a + b
        return a
        """,
        """
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
        """,
        "fibonacci fib recurs sequence memo factorial",
    ),
    _exercise(
        "Squares of the odd numbers",
        "Write `odd_squares(n)`: it returns the list of squares of the odd numbers from 1 to n, in order.",
        "odd_squares(n)",
        """
        assert odd_squares(5) == [1, 9, 25]
        assert odd_squares(0) == []
        assert odd_squares(1) == [1]
        assert odd_squares(6) == [1, 9, 25]
        """,
        "A list comprehension can filter: `[x for x in ... if ...]`. `range(1, n + 1)` includes n.",
        """
        return [k squared for each k from 1 to n if k is odd]
        """,
        """
def odd_squares(n):
    return [k * k for k in range(1, n + 1) if k % 2 == 1]
        """,
        "comprehension square generator map filter",
    ),
    _exercise(
        "The second largest",
        "Write `second_largest(nums)`: it returns the second largest distinct number in the list, or "
        "`None` when there is none.",
        "second_largest(nums)",
        """
        assert second_largest([3, 1, 4, 1, 5]) == 4
        assert second_largest([2, 2]) is None
        assert second_largest([]) is None
        assert second_largest([-1, -5]) == -5
        """,
        "Remove duplicates with `set()`, then sort: the second largest is near the end.",
        """
        distinct = the numbers without duplicates, sorted
        if fewer than two: return None
        return the one before the last
        """,
        """
def second_largest(nums):
    distinct = sorted(set(nums))
    if len(distinct) < 2:
        return None
    return distinct[-2]
        """,
        "sort max min largest smallest duplicat order",
    ),
)


# The same exercises for a chat in Russian: (title, task, hint, pseudocode) by function.
RUSSIAN: dict[str, tuple[str, str, str, str]] = {
    "sum_of_evens": (
        "Сумма чётных чисел",
        "Напишите `sum_of_evens(nums)`: функция получает список целых чисел и возвращает сумму чётных "
        "(0 для пустого списка).",
        "Число чётное, если остаток от деления на 2 равен нулю: `n % 2 == 0`.",
        "total = 0\nдля каждого числа n в nums:\n    если n чётное: прибавить n к total\nвернуть total",
    ),
    "average": (
        "Среднее значение списка",
        "Напишите `average(nums)`: функция возвращает среднее арифметическое списка чисел, а для пустого "
        "списка — 0.0, без ошибки.",
        "Деление на `len(nums)` падает на пустом списке: сначала проверьте этот случай.",
        "если nums пуст: вернуть 0.0\nвернуть сумму nums, делённую на их количество",
    ),
    "safe_divide": (
        "Безопасное деление",
        "Напишите `safe_divide(a, b)`: функция возвращает `a / b`, а если `b` равно нулю — `None`, не "
        "выбрасывая исключение.",
        "Либо проверьте `b == 0` до деления, либо перехватите `ZeroDivisionError` через try/except.",
        "попробовать:\n    вернуть a, делённое на b\nесли возникла ZeroDivisionError:\n    вернуть None",
    ),
    "last_item": (
        "Последний элемент без ошибок",
        "Напишите `last_item(items)`: функция возвращает последний элемент списка или `None`, если список пуст.",
        "`items[-1]` — последний элемент, но на пустом списке он вызывает IndexError.",
        "если items пуст: вернуть None\nвернуть items[-1]",
    ),
    "count_vowels": (
        "Подсчёт гласных",
        "Напишите `count_vowels(text)`: функция возвращает, сколько в строке латинских гласных (a, e, i, "
        "o, u, в любом регистре).",
        "Пройдите по строке посимвольно и сравните символ в нижнем регистре со строкой 'aeiou'.",
        "count = 0\nдля каждого символа c в text:\n    если c в нижнем регистре — одна из a, e, i, o, u: "
        "прибавить 1\nвернуть count",
    ),
    "is_palindrome": (
        "Палиндром ли это?",
        "Напишите `is_palindrome(text)`: функция возвращает True, если текст читается одинаково в обе "
        "стороны, без учёта регистра и пробелов.",
        "Сначала сделайте очищенную копию: нижний регистр, без пробелов. Затем сравните её с перевёрнутой, `s[::-1]`.",
        "cleaned = text в нижнем регистре, без пробелов\nвернуть, равна ли cleaned перевёрнутой cleaned",
    ),
    "word_counts": (
        "Подсчёт слов",
        "Напишите `word_counts(text)`: функция возвращает словарь: каждое слово (в нижнем регистре) → "
        "сколько раз оно встречается; слова разделены пробелами.",
        "`text.split()` даёт слова; `get(word, 0)` у словаря даёт счёт на данный момент.",
        "counts = пустой словарь\nдля каждого слова в text, разбитом по пробелам:\n    w = слово в нижнем "
        "регистре\n    counts[w] = прежний счёт w плюс 1\nвернуть counts",
    ),
    "fib": (
        "Числа Фибоначчи",
        "Напишите `fib(n)`: функция возвращает n-е число Фибоначчи, где fib(0) — 0, fib(1) — 1, а каждое "
        "следующее — сумма двух предыдущих.",
        "Храните два последних числа в двух переменных и сдвигайте их вперёд n раз.",
        "a, b = 0, 1\nповторить n раз:\n    a, b = b, a + b\nвернуть a",
    ),
    "odd_squares": (
        "Квадраты нечётных чисел",
        "Напишите `odd_squares(n)`: функция возвращает список квадратов нечётных чисел от 1 до n по порядку.",
        "Генератор списка умеет фильтровать: `[x for x in ... if ...]`. `range(1, n + 1)` включает n.",
        "вернуть [k в квадрате для каждого k от 1 до n, если k нечётное]",
    ),
    "second_largest": (
        "Второе по величине",
        "Напишите `second_largest(nums)`: функция возвращает второе по величине из различных чисел "
        "списка или `None`, если такого нет.",
        "Уберите повторы через `set()`, затем отсортируйте: второе по величине — ближе к концу.",
        "distinct = числа без повторов, по возрастанию\nесли их меньше двух: вернуть None\nвернуть предпоследнее",
    ),
}
assert set(RUSSIAN) == {e.function for e in PRACTICE_SET}, "every exercise has its Russian"


def in_language(exercise: Exercise, language: str) -> Exercise:
    """The exercise with its words in `language` ("ru" or "en"); its code and tests stay as they are
    (but for the starter's comment)."""
    if language != "ru" or exercise.function not in RUSSIAN:
        return exercise
    title, task, hint, pseudocode = RUSSIAN[exercise.function]
    starter = exercise.starter.replace("# Write your code here.", "# Напишите свой код здесь.")
    return replace(exercise, title=title, task=task, hint=hint, pseudocode=pseudocode, starter=starter)


# Word stems a chat in Russian mentions for each exercise to be near it (matched as word beginnings).
RUSSIAN_WORDS: dict[str, str] = {
    "sum_of_evens": "цикл сумм чётн четн нечётн целы перебор",
    "average": "средн делени деля ноль пуст zerodivision",
    "safe_divide": "исключени ошибк обработ перехват делени",
    "last_item": "индекс элемент последн границ",
    "count_vowels": "строк символ букв гласн регистр",
    "is_palindrome": "палиндром перевер разворот срез строк",
    "word_counts": "словар ключ значени подсчёт подсчет слов",
    "fib": "фибоначчи рекурси последовательн факториал мемоиз",
    "odd_squares": "генератор включени квадрат диапазон",
    "second_largest": "сортир максимум минимум наибольш наименьш множеств повтор",
}
assert set(RUSSIAN_WORDS) == set(RUSSIAN)


def topic_words(exercise: Exercise) -> tuple[str, ...]:
    """What a chat mentions when it is near the exercise, in either language (beginnings of words)."""
    return exercise.words + tuple(RUSSIAN_WORDS.get(exercise.function, "").split())

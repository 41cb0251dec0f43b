"""The Auto task reads what a message asks for: its pick is what the answer's rules and checks follow."""

from __future__ import annotations

import pytest

from chmocoder.task_picker import pick_task


@pytest.mark.parametrize(
    ("message", "task"),
    [
        ("Write a Python function that returns the n-th Fibonacci number, with a few tests.", "write"),
        ("Can you write a function that raises ValueError on bad input?", "write"),
        ("How do I read a file line by line?", "write"),
        ("```python\ndef f(x):\n    raise KeyError(x)\n```\nAdd type hints to this.", "write"),
        ("Why does this crash, and how do I fix it?\n```python\nnums = [1, 2, 3]\nprint(nums[3])\n```", "debug"),
        (
            'Traceback (most recent call last):\n  File "a.py", line 3\nZeroDivisionError: division by zero',
            "debug",
        ),
        ("```python\nprint(1/0)\n```\nI get ZeroDivisionError here", "debug"),
        ("my average() returns 2 instead of 2.5", "debug"),
        ("Explain why this loop never ends:\n```python\nwhile i < 3:\n    print(i)\n```", "debug"),
        ("Explain what this does:\n```python\nsquares = {n: n * n for n in range(5) if n % 2}\n```", "explain"),
        ("What is a list comprehension?", "explain"),
        ("Review this function:\n```python\ndef avg(xs):\n    return sum(xs) / len(xs)\n```", "review"),
        ("Is this idiomatic Python?\n```python\nfor i in range(len(xs)):\n    print(xs[i])\n```", "review"),
        ("```python\ndef parse(s): ...\n```", "write"),
    ],
)
def test_auto_picks_the_task_the_message_asks_for(message: str, task: str) -> None:
    assert pick_task(message) == task

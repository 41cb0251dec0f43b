"""The benchmark's debug set is sound: every reference fix passes its hidden tests, every bug fails
them, and every message shows the buggy code (our own data, run in a plain subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.debug_cases import CASES, DebugCase


def passes(code: str, case: DebugCase) -> bool:
    program = f"{code}\n\n{case.tests}\n\ncheck({case.entry})\n"
    try:
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def test_the_set_is_big_enough_and_ids_are_unique() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_fix_passes_and_the_bug_fails(case: DebugCase) -> None:
    assert passes(case.fixed, case), "the reference fix passes the hidden tests"
    assert not passes(case.buggy, case), "the bug fails them"
    assert f"```python\n{case.buggy}\n```" in case.message
    assert case.tests not in case.message, "the hidden tests stay hidden"

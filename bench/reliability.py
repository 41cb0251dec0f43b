"""ChMOCoder reliability suite in one command: the fault tests, then the load test at 16, 32 and 64 users.

    .venv/bin/python bench/reliability.py                    # about 10 minutes on 2 cores (test model)
    .venv/bin/python bench/reliability.py --users 16         # one load count
    .venv/bin/python bench/reliability.py --skip-faults      # the load test only (= bench/load.py)

The fault tests are the pytest files that break things on purpose: Redis stopped, hung or failing over,
SIGTERM mid-answer, hostile requests, a full model queue. They run first, in one pytest session; the
load test (bench/load.py) follows whatever they gave. Ends with a summary and exits non-zero if a fault
test failed or a load run had errors, lost answers, refusals that left something in Redis, or users
still running at its time limit. Writes bench/results/<time>-reliability-<model>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import TEST_MODEL, Options, failures, report, run_counts, save_results  # noqa: E402
from bench.results import save  # noqa: E402
from chmocoder.settings import PROJECT_ROOT  # noqa: E402

FAULT_TESTS = [
    "tests/test_redis_faults.py",
    "tests/test_shutdown.py",
    "tests/test_hostile_requests.py",
    "tests/test_queue_apart.py",
    "tests/test_redis_ha.py",  # Sentinel failover, where the suite has it
]


def fault_tests(extra: list[str]) -> dict[str, Any]:
    """One pytest session over the fault test files present; outcomes per file from its JUnit XML."""
    files = [f for f in FAULT_TESTS if (PROJECT_ROOT / f).is_file()]
    junit = Path(tempfile.mkdtemp(prefix="chmocoder-faults-")) / "junit.xml"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *extra],
        cwd=PROJECT_ROOT,
        check=False,
    )
    per_file: dict[str, dict[str, int]] = {f: {} for f in files}
    failed: list[str] = []
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname', '').replace('.', '/')}.py"
            outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            counts = per_file.setdefault(name, {})
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in ("failure", "error"):
                failed.append(f"{name}::{case.get('name')}")
    return {"exit_code": done.returncode, "files": per_file, "failed": failed, "wall_s": time.monotonic() - started}


def fault_summary(faults: dict[str, Any]) -> list[str]:
    lines = ["| fault test file | passed | failed | skipped |", "|---|---|---|---|"]
    for name, c in faults["files"].items():
        bad = c.get("failure", 0) + c.get("error", 0)
        lines.append(f"| {name} | {c.get('passed', 0)} | {bad} | {c.get('skipped', 0)} |")
    lines += [f"  failed: {name}" for name in faults["failed"]]
    if faults["exit_code"] not in (0, 5) and not faults["failed"]:
        lines.append(f"  pytest exited {faults['exit_code']} (see its output above)")
    return lines


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="16,32,64", help="load test user counts (default 16,32,64)")
    parser.add_argument("--model", default=TEST_MODEL, help="the load test's model, a catalog name")
    parser.add_argument("--turns", type=int, default=2, help="questions per load test user")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per load run at most")
    parser.add_argument("--skip-faults", action="store_true", help="the load test only")
    parser.add_argument("--skip-load", action="store_true", help="the fault tests only")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (e.g. -x, -k)")
    return parser.parse_args()


def main() -> None:
    args = parse()
    faults = None if args.skip_faults else fault_tests(args.pytest_args)
    opts = Options(model=args.model, turns=args.turns, time_limit_s=args.time_limit)
    rows = [] if args.skip_load else run_counts([int(n) for n in args.users.split(",")], opts)
    lines = ["", f"ChMOCoder reliability · {time.strftime('%Y-%m-%d %H:%M')} · {len(os.sched_getaffinity(0))} CPUs", ""]
    if faults is not None:
        lines += [f"Fault tests ({faults['wall_s']:.0f} s):", "", *fault_summary(faults), ""]
    if rows:
        load_text = report(rows, opts)
        save_results(rows, opts, load_text)
        lines += ["Load test:", "", load_text, ""]
    problems = (faults["failed"] if faults else []) + [p for r in rows for p in failures(r)]
    if faults is not None and faults["exit_code"] not in (0, 5) and not faults["failed"]:
        problems.append(f"pytest exited {faults['exit_code']}")
    lines.append("PASSED: every fault test passed; no load run lost an answer or had an error" if not problems
                 else "FAILED:\n" + "\n".join(f"  {p}" for p in problems))  # fmt: skip
    text = "\n".join(lines)
    print(text)
    save({"faults": faults, "load_runs": [r["users"] for r in rows], "summary": text}, f"reliability-{opts.model}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

"""Sandbox benchmark: how long the pool takes to load, what a run costs once a worker is warm, what
it costs when runs come faster than workers are replaced, and the memory each worker holds.

    .venv/bin/python bench/sandbox.py              # 20 warm runs, 10 back to back, 2 workers
    .venv/bin/python bench/sandbox.py --runs 50 --workers 3

Prints a table and writes bench/results/<time>-sandbox.json. The load average is recorded with the
numbers: loading Pyodide is CPU-bound, so a busy machine (a model generating) slows it down.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import save  # noqa: E402
from chmocoder.sandbox import Sandbox  # noqa: E402
from chmocoder.sandbox.pool import rss_mb  # noqa: E402

PROGRAM = "print(sum(range(10)))"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def worker_pids() -> list[int]:
    """This process's Deno children, found in /proc (the pool does not expose its processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name == "deno" and int(rest[1]) == os.getpid():
            pids.append(int(entry.name))
    return pids


def children_cpu_s() -> float:
    """CPU time of ended worker processes (every used worker is killed and waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for(box: Sandbox, workers: int, timeout: float = 300.0) -> float:
    """Seconds until `workers` workers are loaded and waiting."""
    started = time.monotonic()
    while box.ready_workers < workers:
        if not box.available or time.monotonic() - started > timeout:
            raise SystemExit(f"the sandbox did not get {workers} workers ready: {box.reason or 'timed out'}")
        time.sleep(0.02)
    return time.monotonic() - started


def timed_run(box: Sandbox) -> tuple[float, float]:
    """(wall time of the call, the run's own duration_s); fails loudly if the run did not work."""
    started = time.monotonic()
    result = box.run(PROGRAM)
    wall = time.monotonic() - started
    if (result.status, result.stdout) != ("ok", "45\n"):
        raise SystemExit(f"a benchmark run failed: {result}")
    return wall, result.duration_s


def measure(workers: int, runs: int, back_to_back: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    box = Sandbox(workers=workers, time_limit_s=10.0, memory_mb=512, output_chars=20_000).start()
    try:
        if not box.wait_ready(300):
            raise SystemExit(f"the sandbox is off: {box.reason}")
        first = time.monotonic() - started
        wait_for(box, workers)
        all_ready = time.monotonic() - started
        rss = [rss_mb(pid) or 0.0 for pid in worker_pids()]
        warm = []
        cpu_before = children_cpu_s()
        for _ in range(runs):
            wait_for(box, workers)  # a warm worker waits, as it does when runs are not back to back
            warm.append(timed_run(box))
        wait_for(box, workers)
        cpu_per_run = (children_cpu_s() - cpu_before) / runs
        burst = [timed_run(box)[0] for _ in range(back_to_back)]
    finally:
        box.close()
    walls, own = [w for w, _ in warm], [d for _, d in warm]
    return {
        "workers": workers,
        "cold_start_first_worker_s": first,
        "cold_start_all_workers_s": all_ready,
        "warm_run_wall_p50_s": percentile(walls, 0.5),
        "warm_run_wall_p95_s": percentile(walls, 0.95),
        "warm_run_duration_p50_s": percentile(own, 0.5),
        "warm_run_duration_p95_s": percentile(own, 0.95),
        "back_to_back_wall_p50_s": percentile(burst, 0.5) if burst else None,
        "back_to_back_wall_max_s": max(burst) if burst else None,
        "cpu_s_per_run_with_its_replacement": cpu_per_run,
        "worker_rss_mb": rss,
        "worker_rss_mean_mb": statistics.mean(rss) if rss else None,
        "runs": runs,
        "back_to_back_runs": back_to_back,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "cpus": len(os.sched_getaffinity(0)),
    }


def table(found: dict[str, Any]) -> str:
    def s(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f} s"

    rows = [
        ("cold start, first worker ready", s(found["cold_start_first_worker_s"])),
        (f"cold start, all {found['workers']} workers ready", s(found["cold_start_all_workers_s"])),
        (f"warm run, call wall time p50 / p95 ({found['runs']} runs)", "{} / {}".format(
            s(found["warm_run_wall_p50_s"]), s(found["warm_run_wall_p95_s"]))),
        ("warm run, the run itself (duration_s) p50 / p95", "{} / {}".format(
            s(found["warm_run_duration_p50_s"]), s(found["warm_run_duration_p95_s"]))),
        (f"back to back ({found['back_to_back_runs']} runs), wall p50 / max", "{} / {}".format(
            s(found["back_to_back_wall_p50_s"]), s(found["back_to_back_wall_max_s"]))),
        ("CPU per run, loading its replacement included", s(found["cpu_s_per_run_with_its_replacement"])),
        ("RSS per loaded worker", ", ".join(f"{mb:.0f} MB" for mb in found["worker_rss_mb"])),
        ("load average before / after", f"{found['load_average_before']:.1f} / {found['load_average_after']:.1f}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="warm runs (a loaded worker waiting each time)")
    parser.add_argument("--back-to-back", type=int, default=10, help="runs in a row, without waiting for refills")
    args = parser.parse_args()
    found = measure(args.workers, args.runs, args.back_to_back)
    print(table(found))
    save(found, "sandbox")


if __name__ == "__main__":
    main()

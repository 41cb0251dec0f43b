"""Page benchmark: how busy a long streaming answer keeps the browser, and how fast it still streams.

    .venv/bin/python bench/page.py                      # the test model, a 4000-token essay, 40 s
    .venv/bin/python bench/page.py --cpu-slowdown 4     # a browser four times slower (Chromium's throttling)

A live `python app.py` with the test model writes a long essay into real Chromium (Debian's). Every
second the page's main-thread busy share (Chromium's TaskDuration), the delay of the next animation
frame (what a click on Stop waits for) and the characters on screen are read. Every repaint of the
answer re-renders its whole Markdown, so these grow with the answer unless repaints are paced.
Prints a table and writes bench/results/<time>-page.json. Run on a quiet machine: the browser and the
model share the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from bench.results import save  # noqa: E402
from chmocoder.redis_server import EmbeddedRedis, free_port  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

TEST_MODEL = "smollm2-135m-instruct-q4_1"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
LONG_ESSAY = "Write a long essay about the history of Python."  # the test model writes to the token limit
ANSWER = "[...document.querySelectorAll('#chmocoder-chat .message-row.bot-row')].pop()?.innerText.length ?? 0"
NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => done()))"


def start_app(redis_url: str, tokens: int, threads: int) -> LiveServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHMOCODER_")}
    env |= {
        "CHMOCODER_MODEL": TEST_MODEL,
        "CHMOCODER_REDIS_URL": redis_url,
        "CHMOCODER_PORT": str(free_port()),
        "CHMOCODER_N_CTX": "8192",
        "CHMOCODER_TEMPERATURE": "0",
        "CHMOCODER_MAX_NEW_TOKENS": str(tokens),
        "CHMOCODER_MAX_NEW_TOKENS_LIMIT": str(tokens),
        "CHMOCODER_N_THREADS": str(threads),
    }
    return LiveServer(env, Path(tempfile.mkdtemp(prefix="chmocoder-page-")) / "app.log").start()


def watch(page: Page, seconds: float) -> list[dict[str, float]]:
    """One sample a second while the essay streams."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def busy_s() -> float:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["TaskDuration"]

    box = page.locator("#chmocoder-input textarea")
    box.fill(LONG_ESSAY)
    box.press("Enter")
    started = last_at = time.monotonic()
    last_busy, samples = busy_s(), []
    while time.monotonic() - started < seconds:
        time.sleep(1)
        asked = time.monotonic()
        page.evaluate(NEXT_FRAME)
        frame_s = time.monotonic() - asked
        now, busy = time.monotonic(), busy_s()
        chars = page.evaluate(f"() => {ANSWER}")
        samples.append({"t_s": round(now - started, 1), "busy": (busy - last_busy) / (now - last_at),
                        "frame_ms": frame_s * 1000, "chars": chars})  # fmt: skip
        last_at, last_busy = now, busy
    return samples


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    late = [s for s in samples if s["chars"] >= 4000] or samples[-5:]
    elapsed = samples[-1]["t_s"] - samples[0]["t_s"] or 1
    return {
        "chars_shown": samples[-1]["chars"],
        "chars_per_s": round((samples[-1]["chars"] - samples[0]["chars"]) / elapsed),
        "busy_mean": round(statistics.mean(s["busy"] for s in samples), 3),
        "busy_mean_after_4000_chars": round(statistics.mean(s["busy"] for s in late), 3),
        "frame_ms_p50": round(statistics.median(s["frame_ms"] for s in samples)),
        "frame_ms_max": round(max(s["frame_ms"] for s in samples)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40, help="how long to watch the essay stream")
    parser.add_argument("--tokens", type=int, default=4000, help="the essay's token limit")
    parser.add_argument("--threads", type=int, default=1, help="model threads (the browser needs a core)")
    parser.add_argument("--cpu-slowdown", type=float, default=1, help="Chromium's CPU throttling rate")
    args = parser.parse_args()
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="chmocoder-page-redis-")), port=free_port()).start()
    server = start_app(redis.url, args.tokens, args.threads)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            if args.cpu_slowdown != 1:
                page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
            page.goto(server.url)
            expect(page.locator("#chmocoder-input textarea")).to_be_visible(timeout=120_000)
            page.wait_for_timeout(500)
            samples = watch(page, args.seconds)
            browser.close()
    finally:
        server.stop()
        redis.stop()
    found = {"config": vars(args), "summary": summarize(samples), "samples": samples}
    s = found["summary"]
    print("| chars shown | chars/s | renderer busy (mean / after 4000 chars) | next frame p50 / max |")
    print("|---|---|---|---|")
    print(f"| {s['chars_shown']} | {s['chars_per_s']} | {s['busy_mean']:.0%} / {s['busy_mean_after_4000_chars']:.0%} "
          f"| {s['frame_ms_p50']} / {s['frame_ms_max']} ms |")  # fmt: skip
    save(found, "page")


if __name__ == "__main__":
    main()

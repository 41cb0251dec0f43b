"""The load generator behind bench/load.py: Locust users on gradio_client, /v1 and REST at once.

    .venv/bin/python bench/load_users.py SPEC.json OUT.json     # started by bench/load.py, not by hand

It runs in a process of its own. Locust monkey-patches sockets, threads and ssl for gevent; gradio_client
(httpx, its worker threads) and the `openai` package work under that patching (each user is a greenlet,
their threads become greenlets too), but the patching must not reach a test runner or the process that
owns the app and its Redis. Here it is harmless, and the whole process, the users' threads included,
runs at a lower CPU priority than the app, like users on other machines.

Every request is recorded as it starts and again when it ends: completed, rejected (the server said
clearly that it is busy: Gradio's "Queue is full", HTTP 429 or 503) or error. bench/load.py then reads
Redis and checks what each client saw against what was stored.
"""

from gevent import monkey

monkey.patch_all()  # before anything imports socket, ssl or threading (locust would do it on import, later)

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import httpx  # noqa: E402
import openai  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.utils import QueueError  # noqa: E402
from locust import User, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.exception import StopUser  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import loopback_only  # noqa: E402

CHAT_HEADER = "X-ChMOCoder-Chat"  # chmocoder.openai_api.CHAT_HEADER, named here to import nothing of the app
OWNER_HEADER = "X-ChMOCoder-Owner"
# What a clear refusal says on each surface: Gradio's queue ("Queue is full", the model "is busy and its
# queue is full"), the rate limit, /v1's "the server is busy".
REFUSED = re.compile(r"(?i)queue is full|is busy|too many requests")
REFUSED_STATUS = {429, 503}
# A /v1 stream cannot take text back: a repaired answer follows the draft after this line
# (chmocoder.openai_api.REPLACED); what is stored is the text after the last one.
REPLACED = re.compile(r"\n\n---\n\*[^\n]*: the corrected answer follows\.\*\n\n")
POLL_S = 0.02  # how often a gradio_client user looks for its first text (the client adds 0-50 ms itself)
THINK_S = (1.0, 3.0)  # between a user's turns: reading the answer
TOPICS = ["list", "dictionary", "tuple", "set", "generator", "decorator", "f-string", "lambda", "class", "module"]


@dataclass
class Run:
    """One run's spec and everything its users saw (a single process of greenlets: no locks needed)."""

    url: str
    turns: int
    max_tokens: int
    tag: str
    deadline: float
    started: float = field(default_factory=time.monotonic)
    records: list[dict[str, Any]] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # chats with a finished answer, for REST users to read
    kinds: dict[str, int] = field(default_factory=dict)
    next_user: int = 0

    def user(self, kind: str) -> int:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.next_user += 1
        return self.next_user

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def question(self, user: int, turn: int) -> str:
        """Unique per run, user and turn, so each can be found in Redis; no code asked for, so no checks run."""
        topic = TOPICS[(user + turn) % len(TOPICS)]
        return f"[{self.tag} u{user} t{turn}] In two sentences, what is a Python {topic}?"

    def begin(self, kind: str, call: str, user: int, **fields: Any) -> dict[str, Any]:
        record = {"kind": kind, "call": call, "user": user, "outcome": "pending", **fields}
        record["start_s"] = time.monotonic() - self.started
        self.records.append(record)
        return record

    def end(self, record: dict[str, Any], outcome: str, error: str = "", **fields: Any) -> None:
        record.update(outcome=outcome, **fields)
        record["end_s"] = time.monotonic() - self.started
        record["duration_s"] = record["end_s"] - record["start_s"]
        if error:
            record["error"] = error[:500]
        events.request.fire(
            request_type=record["kind"], name=record["call"], response_time=record["duration_s"] * 1000,
            response_length=len(record.get("text", "")), context={},
            exception=None if outcome == "completed" else RuntimeError(f"{outcome}: {error[:200]}"),
        )  # fmt: skip


RUN: Run | None = None


def current() -> Run:
    assert RUN is not None, "no run: start one with run()"
    return RUN


def refusal_or_error(exc: BaseException) -> str:
    """Sort a failure: "rejected" when the server said it is busy, else "error"."""
    if isinstance(exc, openai.APIStatusError) or isinstance(exc, httpx.HTTPStatusError):
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else exc.response.status_code
        return "rejected" if status in REFUSED_STATUS else "error"
    if isinstance(exc, QueueError) or REFUSED.search(str(exc)):
        return "rejected"
    return "error"


def attempt(
    run: Run,
    kind: str,
    call: str,
    user: int,
    work: Callable[[], Any],
    check: Callable[[Any], str] | None = None,
    **fields: Any,
) -> Any:
    """One request that is not an answer: its result, or None once recorded as rejected or error.
    `check` says what is wrong with a result the server gave without complaint ("" = nothing)."""
    record = run.begin(kind, call, user, **fields)
    try:
        result = work()
    except Exception as exc:  # noqa: BLE001 - every outcome is counted, none raised
        run.end(record, refusal_or_error(exc), f"{type(exc).__name__}: {exc}")
        return None
    wrong = check(result) if check else ""
    run.end(record, "error" if wrong else "completed", wrong)
    return None if wrong else result


# -- gradio_client ----------------------------------------------------------------------------------


def ask_gradio(run: Run, client: Client, chat_id: str, user: int, turn: int) -> None:
    """One /chat turn, waited for as the README says: job.done(), then job.result(timeout)."""
    question = run.question(user, turn)
    record = run.begin("gradio", "/chat", user, chat_id=chat_id, question=question)
    started = time.monotonic()
    job = client.submit(chat_id, question, None, None, None, run.max_tokens, api_name="/chat")
    first = None
    while not job.done() and run.remaining() > 0:
        if first is None and (outputs := job.outputs()) and outputs[-1]:
            first = time.monotonic() - started
        time.sleep(POLL_S)
    if not job.done():
        job.cancel()
        run.end(record, "error", "no answer within the run's time limit")
        return
    try:
        text = job.result(timeout=10)
    except Exception as exc:  # noqa: BLE001 - a refusal or an error, counted
        run.end(record, refusal_or_error(exc), f"{type(exc).__name__}: {exc}")
        return
    run.end(record, "completed", text=text, ttft_s=first if first is not None else time.monotonic() - started)
    run.answered.append(chat_id)


def gradio_user(run: Run, user: int) -> None:
    """A script's life: connect, start an owned chat, ask `turns` questions in it, read its history."""
    client = attempt(run, "gradio", "connect", user, lambda: Client(run.url, verbose=False))
    owner = secrets.token_urlsafe(32)
    new = (lambda: client.predict("write", "beginner", owner, api_name="/new_chat")) if client else None
    chat_id = new and attempt(run, "gradio", "/new_chat", user, new)
    if not chat_id:
        return
    for turn in range(run.turns):
        if turn:
            time.sleep(random.uniform(*THINK_S))
        if run.remaining() <= 0:
            break
        ask_gradio(run, client, chat_id, user, turn)
    seen = [
        r["text"] for r in run.records if r["user"] == user and r["call"] == "/chat" and r["outcome"] == "completed"
    ]

    def has_answers(history: list[dict[str, Any]]) -> str:
        """What the user reads back at once must hold every answer it was just given."""
        stored = {m.get("content") for m in history if m.get("role") == "assistant"}
        missing = sum(text not in stored for text in seen)
        return f"/history lacks {missing} of the {len(seen)} answers just given" if missing else ""

    read = lambda: client.predict(chat_id, api_name="/history")  # noqa: E731
    attempt(run, "gradio", "/history", user, read, has_answers, chat_id=chat_id)


# -- the openai package on /v1 ------------------------------------------------------------------


def read_stream(stream: Any, started: float) -> tuple[str, float | None]:
    """Everything streamed, and the time to its first text."""
    text, first = "", None
    for piece in stream:
        delta = piece.choices[0].delta.content if piece.choices else None
        if delta:
            first = first if first is not None else time.monotonic() - started
            text += delta
    return text, first


def ask_v1(run: Run, ai: openai.OpenAI, chat: str, user: int, turn: int, owner: str) -> str:
    """One streamed /v1 turn stored in a chat ("new" starts one, in `owner`'s list: each user is one
    party for the app's fair turns); returns the chat to continue."""
    question = run.question(user, turn)
    record = run.begin("v1", "/v1/chat/completions", user, question=question, asked_chat=chat)
    started = time.monotonic()
    try:
        raw = ai.chat.completions.with_raw_response.create(
            model="chmocoder", messages=[{"role": "user", "content": question}], max_tokens=run.max_tokens,
            stream=True, extra_headers={CHAT_HEADER: chat, OWNER_HEADER: owner}, timeout=max(run.remaining(), 5.0),
        )  # fmt: skip
        chat_id = raw.headers.get(CHAT_HEADER)
        record["chat_id"] = chat_id
        streamed, first = read_stream(raw.parse(), started)
    except Exception as exc:  # noqa: BLE001 - a refusal or an error, counted
        run.end(record, refusal_or_error(exc), f"{type(exc).__name__}: {exc}")
        return chat
    final = REPLACED.split(streamed)[-1]
    if not chat_id:
        run.end(record, "error", "no X-ChMOCoder-Chat header: the answer's chat is unknown", text=final)
        return chat
    run.end(record, "completed", text=final, streamed_chars=len(streamed), ttft_s=first)
    run.answered.append(chat_id)
    return chat_id


def v1_user(run: Run, user: int) -> None:
    """An editor plugin's life: `turns` streamed questions, the first starting a stored chat."""
    ai = openai.OpenAI(base_url=run.url + "v1", api_key="load-test", max_retries=0)  # each request counted once
    chat, owner = "new", secrets.token_urlsafe(32)
    for turn in range(run.turns):
        if turn:
            time.sleep(random.uniform(*THINK_S))
        if run.remaining() <= 0:
            break
        chat = ask_v1(run, ai, chat, user, turn, owner)


# -- REST -------------------------------------------------------------------------------------------


def rest_call(
    run: Run, http: httpx.Client, user: int, method: str, path: str, name: str,
    check: Callable[[httpx.Response], str] | None = None, **kw: Any,
) -> httpx.Response | None:  # fmt: skip
    """One /api request: its response, or None once recorded as rejected or error."""

    def send() -> httpx.Response:
        response = http.request(method, path, **kw)
        response.raise_for_status()
        return response

    return attempt(run, "rest", name, user, send, check)


def rest_user(run: Run, user: int) -> None:
    """A dashboard's life: create a chat, list them, read and export chats the others had answered."""
    owner = {OWNER_HEADER: secrets.token_urlsafe(32)}
    with httpx.Client(base_url=run.url + "api/", timeout=30) as http:
        for _ in range(run.turns):
            if run.remaining() <= 0:
                break
            made = rest_call(
                run, http, user, "POST", "chats", "POST /api/chats", json={"task": "explain"}, headers=owner
            )
            made_id = made.json()["id"] if made is not None else None

            def lists_it(listed: httpx.Response, made_id: str | None = made_id) -> str:
                if made_id and made_id not in {c["id"] for c in listed.json()}:
                    return "the chat just created is not in its owner's list"
                return ""

            rest_call(run, http, user, "GET", "chats", "GET /api/chats", lists_it, headers=owner)
            chat_id = random.choice(run.answered) if run.answered else made_id
            if chat_id:
                rest_call(run, http, user, "GET", f"chats/{chat_id}", "GET /api/chats/{id}")
                rest_call(run, http, user, "GET", f"chats/{chat_id}/export", "GET /api/chats/{id}/export",
                          params={"format": random.choice(["markdown", "json"])})  # fmt: skip
            time.sleep(random.uniform(*THINK_S))  # a person reading, not a tight loop


# -- Locust -----------------------------------------------------------------------------------------


class ScriptUser(User):
    """A user that lives its script once (a fixed number of turns) and then stops for good."""

    abstract = True
    wait_time = constant(0)
    kind = ""

    def life(self, run: Run, user: int) -> None:
        raise NotImplementedError

    @task
    def live(self) -> None:
        run = current()
        user = run.user(self.kind)
        try:
            self.life(run, user)
        except Exception as exc:  # noqa: BLE001 - a crash of the script is an error to count, not a retry
            for record in run.records:
                if record["user"] == user and record["kind"] == self.kind and record["outcome"] == "pending":
                    run.end(record, "error", f"{type(exc).__name__}: {exc}")
            run.end(run.begin(self.kind, "(script)", user), "error", f"{type(exc).__name__}: {exc}")
        raise StopUser()


class GradioUser(ScriptUser):
    weight = 2
    kind = "gradio"

    def life(self, run: Run, user: int) -> None:
        gradio_user(run, user)


class OpenAIUser(ScriptUser):
    weight = 2
    kind = "v1"

    def life(self, run: Run, user: int) -> None:
        v1_user(run, user)


class RestUser(ScriptUser):
    weight = 1
    kind = "rest"

    def life(self, run: Run, user: int) -> None:
        rest_user(run, user)


def watch_loop(lags: list[float], period: float = 0.1) -> None:
    """How late this process's own event loop wakes: a lag here delays what every user sees, so a slow
    answer can be told apart from a busy load generator."""
    while True:
        started = time.monotonic()
        gevent.sleep(period)
        lags.append(time.monotonic() - started - period)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """All users at once (spawned within a second), each with its fixed turns; ended at the time limit."""
    global RUN
    RUN = Run(loopback_only(spec["url"]), spec["turns"], spec["max_tokens"], spec["tag"],
              deadline=time.monotonic() + spec["time_limit_s"])  # fmt: skip
    env = Environment(user_classes=[GradioUser, OpenAIUser, RestUser], events=events)
    runner = env.create_local_runner()
    lags: list[float] = []
    watcher = gevent.spawn(watch_loop, lags)
    runner.start(spec["users"], spawn_rate=spec["users"])
    hard_stop = RUN.deadline + spec["grace_s"]  # then requests still running are counted as errors
    gevent.sleep(1.5)  # spawning
    while runner.user_count > 0 and time.monotonic() < hard_stop:
        gevent.sleep(0.2)
    stragglers = runner.user_count
    runner.quit()
    watcher.kill()
    for record in RUN.records:
        if record["outcome"] == "pending":
            RUN.end(record, "error", "still running at the time limit")
    return {
        "records": RUN.records,
        "users_by_kind": RUN.kinds,
        "stopped_at_time_limit": stragglers,
        "client_cpu_saturated": bool(getattr(runner, "cpu_warning_emitted", False)),
        "wall_s": max((r["end_s"] for r in RUN.records), default=0.0),
        "client_cpu_s": (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)),
        "client_loop_lag_max_s": max(lags, default=0.0),
    }


def main() -> None:
    spec_path, out_path = map(Path, sys.argv[1:3])
    os.nice(int(os.environ.get("CHMOCODER_LOAD_NICENESS", "10")))  # the clients yield the CPU to the app
    out_path.write_text(json.dumps(run(json.loads(spec_path.read_text()))))
    sys.stdout.flush()
    os._exit(0)  # gradio_client's event-stream threads would keep the process alive; the results are written


if __name__ == "__main__":
    main()

"""Practice: at the beginner and intermediate levels, an exercise on what the chat was about, solved
in the workspace's editor and checked against hidden tests (chmocoder.practice), with a hint ladder.

Thin: the coach decides everything and keeps the record in the chat; this panel shows the current
exercise, what has been revealed of the ladder, the last check and the chat's earlier exercises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..client_api import MODEL_QUEUE, SANDBOX_QUEUE
from ..errors import ChatError
from ..fences import code_block
from ..gradio_errors import user_errors
from ..practice import LEVELS, PracticeCoach
from ..practice_record import RUNGS, record_of
from ..prompts import DEFAULT_LEVEL
from .language import say, tr
from .page import Page, Shown, Updates
from .render import plain
from .workspace import Workspace

NOW = {"queue": False, "api_visibility": "private"}
Values = dict[Any, Any]
NEXT_RUNG = {0: "Hint", 1: "Show pseudocode", 2: "Show the solution", 3: "Solution shown"}
INTRO = (
    "*Press **Practice** for a small exercise on what this chat is about. You write it in the editor "
    "above; **Check my solution** runs it against hidden tests.*"
)


def exercise_text(entry: dict[str, Any]) -> str:
    """The exercise as the learner reads it: title, where it came from, the task; never its tests."""
    source = say("written for this chat" if entry["origin"] == "model" else "from the practice set")
    if entry["origin"] != "model" and entry.get("model_refused"):
        source += say(" (the model's exercise was not used: {why})", why=say(entry["model_refused"]))
    title = say("**Exercise: {title}** · *{source}*", title=plain(entry["title"]), source=source)
    how = say(
        "*{n} hidden tests. Write your solution in the editor above, then press **Check my solution**.*",
        n=len(entry["tests"]),
    )
    return f"{title}\n\n{entry['task']}\n\n{how}"


def ladder_text(entry: dict[str, Any]) -> str:
    """What the learner has asked to see so far: the hint, then the pseudocode, then the solution."""
    parts = []
    if entry["rung"] >= 1:
        parts.append(say("**Hint:** {text}", text=entry["hint"]))
    if entry["rung"] >= 2:
        parts.append(f"{say('**Pseudocode:**')}\n{code_block(entry['pseudocode'], 'text')}")
    if entry["rung"] >= 3:
        parts.append(f"{say('**Solution:**')}\n{code_block(entry['solution'], 'python')}")
    return "\n\n".join(parts)


def outcome_text(last: dict[str, Any]) -> str:
    """A check's outcome in the page's language: how many hidden tests pass, never which."""
    if last["solved"]:
        return say("All {total} hidden tests pass. Solved!", total=last["total"])
    if last.get("error"):
        return f"{say('Your code does not run:')}\n{code_block(last['error'], 'text')}"
    told = say("{passed} of {total} hidden tests pass.", passed=last["passed"], total=last["total"])
    if last.get("raised"):
        told += say(" One of them raised {error} in your code.", error=last["raised"])
    if last.get("limit"):
        told += say(" Your code was {limit}.", limit=last["limit"])
    return told + say(" Keep going!")


def runs_text(runs: int) -> str:
    return say("1 run") if runs == 1 else say("{runs} runs", runs=runs)


def result_text(entry: dict[str, Any]) -> str:
    last = entry.get("last")
    if not last:
        return ""
    mark = "✅" if last["solved"] else "❌"
    about = runs_text(entry["runs"])
    if entry.get("solved_with") not in (None, "no help"):
        about += ", " + say(f"with {entry['solved_with']}")
    told = outcome_text(last)
    if "\n" in told:  # an error shown as a block: the runs go on the first line
        first, rest = told.split("\n", 1)
        return f"{mark} {first} *({about})*\n{rest}"
    return f"{mark} {plain(told)} *({about})*"


def earlier_text(exercises: list[dict[str, Any]]) -> str:
    """The chat's earlier exercises and how each went."""
    rows = []
    for entry in exercises:
        title = plain(entry["title"])
        if entry["solved"]:
            done = "✅ {title} (solved in {runs}, {help})"
            rows.append(say(done, title=title, runs=runs_text(entry["runs"]), help=say(entry["solved_with"])))
        else:
            best = "⬜ {title} (not solved: best {best} of {total})"
            rows.append(say(best, title=title, best=entry["best"], total=len(entry["tests"])))
    return (say("**Earlier in this chat:** ") + " · ".join(rows)) if rows else ""


@dataclass
class PracticePanel:
    coach: PracticeCoach | None
    panel: gr.Accordion
    start: gr.Button
    exercise: gr.Markdown
    check: gr.Button
    hint: gr.Button
    ladder: gr.Markdown
    result: gr.Markdown
    earlier: gr.Markdown
    space: Workspace

    @property
    def shows(self) -> list[Any]:
        return [self.panel, self.exercise, self.check, self.hint, self.ladder, self.result, self.earlier]

    def painted(self, exercises: list[dict[str, Any]], level: str | None = None) -> Updates:
        entry = exercises[-1] if exercises else None
        updates: Updates = {
            self.exercise: exercise_text(entry) if entry else tr(INTRO),
            self.check: gr.update(visible=entry is not None),
            self.hint: gr.update(
                visible=entry is not None,
                value=tr(NEXT_RUNG[entry["rung"] if entry else 0]),
                interactive=bool(entry) and entry["rung"] < len(RUNGS),
            ),
            self.ladder: ladder_text(entry) if entry else "",
            self.result: result_text(entry) if entry else "",
            self.earlier: earlier_text(exercises[:-1]),
        }
        if level is not None:
            updates[self.panel] = gr.update(visible=level in LEVELS)
        return updates

    def paint(self, shown: Shown) -> Updates:
        """The open chat's exercises; on opening it, an unsolved exercise newer than the last answer
        puts the learner's last checked code (or the starter) back in the editor."""
        meta = shown.meta or {}
        exercises = record_of(meta)["exercises"]
        updates = self.painted(exercises, meta.get("level", DEFAULT_LEVEL))
        entry = exercises[-1] if exercises else None
        last_at = max((m.get("at", 0) for m in shown.history), default=0)
        if shown.fresh and entry and not entry["solved"] and entry["started"] >= last_at:
            updates[self.space.editor] = entry["code"]
        return updates

    def for_level(self, level: str) -> Updates:
        return {self.panel: gr.update(visible=level in LEVELS)}

    @user_errors(fallback={})
    def begin(self, values: Values, page: Page, level: Any) -> Updates:
        """A new exercise; its starter goes into the editor (the panel is painted by `repaint`)."""
        entry = self._coach.start(values[page.chat_id], values[page.owner], values[level])
        space = self.space
        cleared = {space.result: "", space.stdout: "", space.stderr: "", space.last_run: None}
        return cleared | {space.editor: entry["starter"]}

    @user_errors(fallback=None)
    def run_tests(self, values: Values, page: Page) -> None:
        """Check the editor's code; the outcome is kept in the record, which `repaint` shows."""
        self._coach.check(values[page.chat_id], values[page.owner], values[self.space.editor])

    @user_errors(fallback={})
    def next_rung(self, values: Values, page: Page) -> Updates:
        chat_id = values[page.chat_id]
        self._coach.hint(chat_id, values[page.owner])
        return self.painted(self._coach.record(chat_id)["exercises"])

    def repaint(self, values: Values, page: Page) -> Updates:
        """The panel for the chat open now: a Practice or Check that ends after the learner opened
        another chat must not leave the first chat's exercise on screen."""
        chat_id = values[page.chat_id]
        try:
            exercises = self._coach.record(chat_id)["exercises"] if chat_id and self.coach else []
        except ChatError:
            return {}
        return self.painted(exercises)

    @property
    def _coach(self) -> PracticeCoach:
        if self.coach is None:
            raise gr.Error("Practice needs the code sandbox, and this server has none.")
        return self.coach


def build(page: Page, coach: PracticeCoach | None, space: Workspace) -> PracticePanel:
    with gr.Accordion(tr("Practice"), open=True, visible=True, elem_id="chmocoder-practice") as panel:
        start = gr.Button(tr("Practice"), variant="primary", size="sm", elem_id="chmocoder-practice-start")
        exercise = gr.Markdown(tr(INTRO), elem_id="chmocoder-practice-exercise")
        with gr.Row():
            check = gr.Button(tr("Check my solution"), size="sm", visible=False, elem_id="chmocoder-practice-check")
            hint = gr.Button(tr("Hint"), size="sm", visible=False, elem_id="chmocoder-practice-hint")
        result = gr.Markdown("", elem_id="chmocoder-practice-result")
        ladder = gr.Markdown("", elem_id="chmocoder-practice-ladder")
        earlier = gr.Markdown("", elem_id="chmocoder-practice-earlier")
    practice = PracticePanel(coach, panel, start, exercise, check, hint, ladder, result, earlier, space)
    page.paints([*practice.shows, space.editor], practice.paint)
    return practice


def wire(page: Page, practice: PracticePanel, level: gr.Dropdown) -> None:
    """A new exercise waits in the model's queue; a check in the sandbox's; the ladder at once. After
    the first two, the panel is painted from the record of the chat open then."""
    space, shows = practice.space, set(practice.shows)
    level.change(practice.for_level, {level}, {practice.panel}, **NOW)
    begun = {practice.exercise, space.editor, space.result, space.stdout, space.stderr, space.last_run}
    repainted = {"fn": lambda values: practice.repaint(values, page), "inputs": {page.chat_id}, "outputs": shows} | NOW
    practice.start.click(
        lambda values: practice.begin(values, page, level),
        {page.chat_id, page.owner, level},
        begun,
        concurrency_id=MODEL_QUEUE,
        concurrency_limit=page.service.settings.parallel,
        api_visibility="private",
        show_progress_on=[practice.exercise],
    ).then(**repainted)
    workers = space.runner.workers if space.runner is not None else 1
    practice.check.click(
        lambda values: practice.run_tests(values, page),
        {page.chat_id, page.owner, space.editor},
        None,
        concurrency_id=SANDBOX_QUEUE,
        concurrency_limit=workers,
        api_visibility="private",
        show_progress_on=[practice.result],
    ).then(**repainted)
    practice.hint.click(lambda values: practice.next_rung(values, page), {page.chat_id, page.owner}, shows, **NOW)

"""How often the page repaints a streaming answer: rarely enough that a long answer cannot keep a slow
browser too busy to answer its Stop button, never so rarely that a change of state is missed."""

from __future__ import annotations

from chmocoder.turn import Reply
from chmocoder.ui.pacing import MAX_GAP_S, paced, repaint_gap


class Clock:
    """The time each reply arrives: the service hands on a batch of tokens every 80 ms."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stream(clock: Clock, replies: list[Reply], every_s: float = 0.08):
    for reply in replies:
        clock.now += every_s
        yield reply


def essay(chars: int, step: int = 20) -> list[Reply]:
    return [Reply("x" * n) for n in range(step, chars + 1, step)]


def test_a_short_answer_is_painted_as_it_comes() -> None:
    clock = Clock()
    replies = essay(400)
    assert list(paced(stream(clock, replies), clock)) == replies


def test_a_long_answer_is_painted_less_often_as_it_grows_and_ends_on_its_last_words() -> None:
    clock = Clock()
    replies = essay(16_000)  # 800 batches, 64 s at 80 ms
    painted = list(paced(stream(clock, replies), clock))
    assert painted[0] == replies[0], "the first words at once"
    assert painted[-1] == replies[-1], "the whole answer at the end"
    assert len(painted) < 250, f"{len(painted)} repaints of a 16,000-character answer"
    late = [r for r in painted if len(r.text) > 10_000]  # its last 24 s
    assert 40 <= len(late) <= 24 / MAX_GAP_S + 1, "still streaming, about twice a second"
    assert repaint_gap(16_000) == MAX_GAP_S


def test_every_change_of_state_is_painted_at_once() -> None:
    clock = Clock()
    text = "y" * 12_000
    replies = [
        Reply(text),
        Reply(text, status="checking 1 of 2…"),
        Reply(text, status="checking 2 of 2…"),
        Reply(text + "z", status="checking 2 of 2…"),  # too soon: held
        Reply("a repair", status="fixing (round 1 of 2)", attempts=[{"content": text}]),
        Reply("a repair, longer", status="fixing (round 1 of 2)", attempts=[{"content": text}]),
        Reply("a repair, longer", done=True, attempts=[{"content": text}]),
    ]
    painted = list(paced(stream(clock, replies, every_s=0.01), clock))
    assert painted == [replies[i] for i in (0, 1, 2, 4, 6)]

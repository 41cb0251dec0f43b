"""How often the page repaints a streaming answer.

Every repaint makes the browser re-render the whole answer's Markdown, so its cost grows with the
answer. At a fixed rate a long answer kept a slow browser's main thread busy until its Stop button no
longer responded, and every repaint also costs the server CPU the model needs. So the gap between
repaints grows with the answer's length (render work per second stays about the same), while the
first words, every status change ("checking…", "fixing…") and the last text are shown at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from ..turn import Reply

MIN_GAP_S = 0.05  # under the service's 80 ms batches: a short answer is painted at every batch
MAX_GAP_S = 0.5  # the longest answers still visibly stream
CHARS_PER_S = 20_000  # an answer of 8,000 characters repaints every 0.4 s


def repaint_gap(chars: int) -> float:
    """The least time between two repaints of an answer this long."""
    return min(MAX_GAP_S, max(MIN_GAP_S, chars / CHARS_PER_S))


def paced(replies: Iterable[Reply], clock: Callable[[], float] = time.monotonic) -> Iterator[Reply]:
    """The replies worth repainting: the first, each one that changes what the answer is doing, and
    text growth once its gap has passed; the newest reply is always handed on at the end."""
    shown: Reply | None = None
    shown_at = 0.0
    held: Reply | None = None
    for reply in replies:
        now = clock()
        if shown is None or changes_state(shown, reply) or now - shown_at >= repaint_gap(len(reply.text)):
            yield reply
            shown, shown_at, held = reply, now, None
        else:
            held = reply
    if held is not None:
        yield held


def changes_state(before: Reply, after: Reply) -> bool:
    return (
        after.done
        or after.status != before.status
        or len(after.attempts) != len(before.attempts)
        or not after.text.startswith(before.text)  # a repair replaced the draft
    )

"""Tokens to the text a user may see: whole characters only, and nothing of a stop sequence.

A character can span tokens (an emoji, Cyrillic in some vocabularies), and a stop sequence such as
"<|im_end|>" or a client's "\\n\\n" can arrive split across tokens: text that could still turn out
to begin a stop sequence is held back until the next token says whether it does.
"""

from __future__ import annotations

import codecs


class TokenText:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._bytes = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self.stopped = False  # a stop sequence was met: the answer is complete

    def add(self, data: bytes) -> str:
        """Feed one token's bytes; returns the text that may now be shown (possibly empty)."""
        if self.stopped:
            return ""
        text = self._held + self._bytes.decode(data)
        for stop in self.stops:
            at = text.find(stop)
            if at >= 0:
                self.stopped, self._held = True, ""
                return text[:at]
        keep = max((self._partial(text, stop) for stop in self.stops), default=0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What is held back, once the answer has ended for another reason (its length limit)."""
        text, self._held = self._held + self._bytes.decode(b"", final=True), ""
        return "" if self.stopped else text

    @staticmethod
    def _partial(text: str, stop: str) -> int:
        """The length of the longest end of `text` that begins `stop`."""
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                return n
        return 0

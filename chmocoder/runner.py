"""Run a person's own code in the sandbox: the page's "Try it yourself" panel and /run_code.

The same sandbox checks answers (chmocoder.verify); this only checks the code is worth sending
(text, not empty, not too long, not binary) and reports how the run ended.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from .attachments import looks_binary
from .errors import InvalidInput, Unavailable
from .verify import SandboxLike

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 50_000


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended. `status`: "ok" (exit 0), "error" (an exception or a non-zero exit),
    "timeout", "memory" or "output" (a limit of the sandbox was hit), "unavailable"."""

    stdout: str
    stderr: str
    exit_code: int | None
    status: str
    duration_s: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CodeRunner:
    def __init__(self, sandbox: SandboxLike, max_code_chars: int = MAX_CODE_CHARS) -> None:
        self.sandbox = sandbox
        self.max_code_chars = max_code_chars

    @property
    def available(self) -> bool:
        return bool(self.sandbox.available)

    @property
    def reason(self) -> str:
        """Why code cannot run now ("" when it can)."""
        return "" if self.available else (self.sandbox.reason or "the code sandbox is off")

    @property
    def workers(self) -> int:
        """How many runs the sandbox takes at once."""
        return max(1, int(getattr(self.sandbox, "workers", 1) or 1))

    def validate(self, code: Any) -> str:
        if not isinstance(code, str):
            raise InvalidInput("the code must be text")
        if not code.strip():
            raise InvalidInput("there is no code to run")
        if len(code) > self.max_code_chars:
            raise InvalidInput(f"the code is {len(code):,} characters long; the limit is {self.max_code_chars:,}")
        if looks_binary(code):
            raise InvalidInput("the code looks like binary data (it contains control characters); paste text only")
        return code

    def run(self, code: Any) -> RunOutcome:
        """Run `code` in the sandbox. Bad code raises InvalidInput and a sandbox that is off raises
        Unavailable, before anything runs; whatever the code itself does is in the outcome."""
        code = self.validate(code)
        if not self.available:
            raise Unavailable(f"code cannot run here: {self.reason}")
        result = self.sandbox.run(code)
        outcome = RunOutcome(
            stdout=result.stdout,
            stderr=result.stderr,
            exit_code=result.exit_code,
            status=result.status,
            duration_s=round(float(result.duration_s), 3),
            message=result.message or "",
        )
        log.info(
            "code run chars=%d status=%s exit=%s s=%.2f",
            len(code),
            outcome.status,
            outcome.exit_code,
            outcome.duration_s,
        )
        return outcome

"""Property-based run of schemathesis against /openapi.json on a live server: no request may cause a 5xx.

The schemathesis CLI is used (its pytest plugin does not support pytest 9); its summary is kept in
artifacts/schemathesis.txt.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .conftest import LiveServer


def test_no_generated_request_breaks_the_server(
    start_server: Callable[..., LiveServer], redis_server, artifacts: Path, tmp_path: Path
) -> None:
    # Tiny answers: generated requests may ask the model for a completion on every example.
    server = start_server(redis_server.url, max_new_tokens="8", max_new_tokens_limit="16")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            server.url + "openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--seed",
            "7",
            "--request-timeout",
            "60",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # its example cache stays out of the project and does not carry over between runs
    )
    (artifacts / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-4000:]
    selected, tested = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", result.stdout).groups()  # type: ignore[union-attr]
    assert selected == tested and int(tested) >= 12, "every operation of the schema was exercised"
    generated, passed = re.search(r"(\d+) generated, (\d+) passed", result.stdout).groups()  # type: ignore[union-attr]
    assert generated == passed and int(generated) >= 100, f"only {generated} cases ran"

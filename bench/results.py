"""Where benchmarks keep their numbers: bench/results/<time>-<name>.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(found: dict[str, Any], name: str) -> Path:
    """Write one benchmark's results and say where."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}.json"
    out.write_text(json.dumps(found, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return out

"""The catalog of known models (configs/models.toml): where each file comes from and its pinned hash."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OfflineFile:
    """A whole GGUF shipped inside one Python distribution (used in place, never copied)."""

    distribution: str
    path: str


@dataclass(frozen=True)
class OfflineParts:
    """A GGUF split across numbered distributions; `{n}` in the names is the part number (1-based)."""

    distribution: str
    path: str
    count: int

    def part(self, n: int) -> tuple[str, str]:
        return self.distribution.format(n=n), self.path.format(n=n)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    description: str = ""
    repo: str | None = None
    size: int | None = None
    sha256: str | None = None
    n_ctx_train: int | None = None
    offline_file: OfflineFile | None = None
    offline_parts: OfflineParts | None = None


def load_catalog(path: Path) -> dict[str, ModelEntry]:
    """Read the catalog; a malformed entry fails at start-up, not at first use."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh).get("models", {})
    catalog = {}
    for name, fields in raw.items():
        fields = dict(fields)
        if "offline_file" in fields:
            fields["offline_file"] = OfflineFile(**fields["offline_file"])
        if "offline_parts" in fields:
            fields["offline_parts"] = OfflineParts(**fields["offline_parts"])
        catalog[name] = ModelEntry(name=name, **fields)
    return catalog

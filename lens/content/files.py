"""Reading a content repository from a local folder into {path: text}."""

from __future__ import annotations

from pathlib import Path

from lens.content.parsing import FOLDERS, file_kind


def read_folder(root: Path) -> dict[str, str]:
    """Every content file under `root` (drafts and notes left out), by relative path."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.parts):
            continue
        rel = path.relative_to(root).as_posix()
        if file_kind(rel) is None:
            continue
        files[rel] = path.read_text(encoding="utf-8", errors="replace")
    return files


def find_root(path: Path) -> Path | None:
    """The content repository holding `path`: the nearest folder with a content folder."""
    current = path.resolve()
    if current.is_file():
        current = current.parent
    for candidate in (current, *current.parents):
        if any((candidate / name).is_dir() for name in FOLDERS):
            return candidate
    return None

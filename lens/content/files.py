"""Which repository files a sync reads, and reading them from a local folder.

Two kinds: content files (text, `file_kind`) and images (`is_asset`: bytes, at most
`MAX_ASSET_BYTES` each; a larger one is left out as if it were not there).
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from lens.content.parsing import FOLDERS, file_kind
from lens.content.syntax import is_draft
from lens.logging import get_logger

log = get_logger("lens.content")

MAX_ASSET_BYTES = 5 * 1024 * 1024
ASSET_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".avif": "image/avif",
}


def asset_type(path: str) -> str | None:
    """The Content-Type of an image path, or None when it is not one."""
    return ASSET_TYPES.get(posixpath.splitext(path)[1].lower())


def is_asset(path: str) -> bool:
    """An image a snapshot may keep: anywhere but in drafts and dot-folders."""
    if asset_type(path) is None or is_draft(path):
        return False
    return not any(part.startswith(".") for part in path.split("/"))


def asset_fits(path: str, size: int) -> bool:
    """Within the size cap; a larger image is logged and treated as missing."""
    if size <= MAX_ASSET_BYTES:
        return True
    log.warning("content.asset.too_large", path=path, bytes=size, limit=MAX_ASSET_BYTES)
    return False


def _relative_files(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        # Only the parts below the root count: a repository may itself sit under a
        # dot-folder (~/.local/...).
        if any(part.startswith(".") for part in rel.split("/")) or not path.is_file():
            continue
        found.append((rel, path))
    return found


def read_folder(root: Path) -> dict[str, str]:
    """Every content file under `root` (drafts and notes left out), by relative path."""
    return {
        rel: path.read_text(encoding="utf-8", errors="replace")
        for rel, path in _relative_files(root)
        if file_kind(rel) is not None
    }


def list_folder_assets(root: Path) -> list[str]:
    """Every image under `root` within the size cap, by relative path."""
    return [
        rel
        for rel, path in _relative_files(root)
        if is_asset(rel) and asset_fits(rel, path.stat().st_size)
    ]


def digest_folder_assets(root: Path, paths: list[str]) -> dict[str, str]:
    """These images' SHA-256, read one at a time."""
    return {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in paths}


def read_folder_assets(root: Path, paths: list[str]) -> dict[str, bytes]:
    """The bytes of these images under `root`; one gone or grown too large is left out."""
    found: dict[str, bytes] = {}
    for rel in paths:
        path = root / rel
        if not is_asset(rel) or not path.is_file():
            continue
        data = path.read_bytes()
        if asset_fits(rel, len(data)):
            found[rel] = data
    return found


def find_root(path: Path) -> Path | None:
    """The content repository holding `path`: the nearest folder with a content folder."""
    current = path.resolve()
    if current.is_file():
        current = current.parent
    for candidate in (current, *current.parents):
        if any((candidate / name).is_dir() for name in FOLDERS):
            return candidate
    return None

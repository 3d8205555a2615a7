"""The example course with images: what the image tests of sources, sync and the asset
route build on."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from lens.content.files import read_folder
from lens.content.parsing import load_content

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"
ARTICLE = "articles/field-notes-on-specification-gaming.md"
WELCOME = "modules/welcome.md"
DIAGRAM = "articles/attachments/diagram.png"  # embedded by the article: ![[diagram.png]]
FIGURE = "modules/figure.svg"  # beside the module that embeds it: ![[figure.svg]]
UNUSED = "Lenses/images/unused.png"  # embedded by nothing

_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert("no")</script><rect width="10" height="10"/></svg>'
)


def png(version: int = 0) -> bytes:
    """A 1x1 PNG; each version has other bytes (trailing data browsers ignore)."""
    return _PNG + bytes([version]) * version


def with_embeds(files: dict[str, str]) -> dict[str, str]:
    """The article embeds the diagram; the welcome module embeds the figure."""
    files = dict(files)
    files[ARTICLE] += "\n![[diagram.png]]\n"
    files[WELCOME] = files[WELCOME].replace(
        "for the questions the reading left open.\n",
        "for the questions the reading left open.\n\n![[figure.svg]]\n",
    )
    return files


def repository() -> dict[str, str | bytes]:
    """The example course, its embeds and images, and files that are not content."""
    files: dict[str, str | bytes] = {}
    files.update(with_embeds(read_folder(EXAMPLE)))
    files.update(
        {
            "README.md": "# Course content\n",
            ".obsidian/app.json": "{}",
            ".obsidian/icon.png": png(7),
            DIAGRAM: png(1),
            FIGURE: SVG,
            UNUSED: png(2),
        }
    )
    return files


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def require_embeds() -> set[str]:
    """The images the parser says the example's embeds use; skips the test while the
    parser does not report them yet."""
    files = {p: c for p, c in repository().items() if isinstance(c, str)}
    used = load_content(files, assets=[DIAGRAM, FIGURE, UNUSED]).assets_used
    if not used:
        pytest.skip(
            "lens.content.parsing.load_content does not fill ContentSet.assets_used yet "
            "(the parser's ![[image]] resolution is still in progress)"
        )
    return used

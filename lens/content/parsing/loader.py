"""Reads a whole content repository: picks each file's kind by its top folder and loads
the kinds in dependency order, so one broken file never stops the others from loading."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lens.content.parsed import ContentSet
from lens.content.parsing.article import load_article
from lens.content.parsing.course import load_course
from lens.content.parsing.learning_outcome import load_outcome
from lens.content.parsing.lens import load_lens
from lens.content.parsing.module import load_module
from lens.content.parsing.reader import Reader
from lens.content.parsing.transcript import load_timestamps, load_transcript
from lens.content.syntax import is_draft

FOLDERS = {
    "courses": "course",
    "modules": "module",
    "Learning Outcomes": "outcome",
    "Lenses": "lens",
    "articles": "article",
    "video_transcripts": "transcript",
}

# A kind only looks up kinds loaded before it: lenses use articles and transcripts,
# modules use learning outcomes and lenses.
_LOADERS: dict[str, Callable[[Reader, str], None]] = {
    "article": load_article,
    "transcript": load_transcript,
    "lens": load_lens,
    "outcome": load_outcome,
    "module": load_module,
    "course": load_course,
}


def file_kind(path: str) -> str | None:
    """What a repository path holds, or None for notes, drafts and other files."""
    if is_draft(path):
        return None
    top, _, rest = path.partition("/")
    kind = FOLDERS.get(top)
    if kind is None or not rest:
        return None
    if kind == "transcript" and path.endswith(".timestamps.json"):
        return "timestamps"
    if not path.endswith(".md"):
        return None
    if kind == "article" and rest.startswith("attachments/"):
        return None
    return kind


def load_content(files: Mapping[str, str]) -> ContentSet:
    """Parse and validate a whole repository given as {path: text}."""
    reader = Reader(files)
    kinds: dict[str, list[str]] = {}
    for path in sorted(files):
        kind = file_kind(path)
        if kind is not None:
            kinds.setdefault(kind, []).append(path)
    reader.existing = frozenset(p for p in files if not is_draft(p))
    for kind, load in _LOADERS.items():
        for path in kinds.get(kind, []):
            reader.out.problems.setdefault(path, [])
            try:
                load(reader, path)
            except Exception as exc:  # a parser bug must not hide the other files
                reader.problem(path, 1, "", f"Could not be read ({type(exc).__name__}: {exc})")
    # Timings are read with their transcript; these have none, but are still checked.
    for path in kinds.get("timestamps", []):
        transcript = path[: -len(".timestamps.json")] + ".md"
        if transcript not in files:
            load_timestamps(reader, path)
    # A course that uses an invalid module shows the rest; the module's problems
    # are on the module's own file.
    reader.out.checked = sum(len(v) for v in kinds.values())
    return reader.out

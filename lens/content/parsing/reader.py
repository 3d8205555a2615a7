"""The state of one repository read and the checks every file kind shares.

A Reader gathers problems by path, claims ids across all files, and checks the rules that
sit on the shared syntax of lens.content.syntax: required frontmatter keys, which `name::`
fields a header allows, booleans, header titles and wiki-links. It also holds what the
kinds read first (articles, transcripts, lenses, learning outcomes) for the kinds that
use them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lens.content.parsed import Article, ContentSet, Segment, Transcript
from lens.content.problems import Problem
from lens.content.syntax import (
    Block,
    Document,
    Field,
    find_link,
    one_colon_hint,
    parse_bool,
    resolve_link,
)

CHAT_V2 = {
    "instructions",
    "hidePreviousContentFromUser",
    "hidePreviousContentFromTutor",
    "optional",
}
CHAT_V1 = {"instructions", "showUserPreviousContent", "showTutorPreviousContent", "optional"}
# Every field name in the format, so `from: 1:10` can be recognised as a typo for `from::`.
ALL_FIELDS = CHAT_V2 | CHAT_V1 | {"content", "source", "optional", "id", "from", "to"}


@dataclass
class LensDef:
    """A valid lens, before a module places it in a section."""

    path: str
    id: str
    kind: Literal["article", "video"]
    title: str
    segments: tuple[Segment, ...]
    article: Article | None
    video: Transcript | None


@dataclass
class OutcomeDef:
    """A valid learning outcome: the lenses a module's `# Learning Outcome:` expands to."""

    path: str
    id: str
    lenses: list[tuple[str, bool]]  # lens path, optional


@dataclass
class Reader:
    files: Mapping[str, str]
    out: ContentSet = field(default_factory=ContentSet)
    existing: frozenset[str] = frozenset()
    articles: dict[str, Article] = field(default_factory=dict)
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    lenses: dict[str, LensDef] = field(default_factory=dict)
    outcomes: dict[str, OutcomeDef] = field(default_factory=dict)
    ids: dict[str, tuple[str, int]] = field(default_factory=dict)

    def problem(self, path: str, line: int, context: str, message: str) -> None:
        self.out.problems.setdefault(path, []).append(Problem(path, line, context, message))

    def ok(self, path: str) -> bool:
        return not self.out.problems.get(path)

    def claim_id(self, path: str, line: int, context: str, value: str) -> None:
        try:
            uuid.UUID(value)
        except ValueError:
            self.problem(path, line, context, f"id {value!r} is not a UUID")
            return
        key = value.lower()
        if key in self.ids and self.ids[key] != (path, line):
            other_path, other_line = self.ids[key]
            self.problem(
                path, line, context, f"Duplicate id {value} (also at {other_path}:{other_line})"
            )
            return
        self.ids[key] = (path, line)

    def frontmatter(self, doc: Document, required: list[str]) -> dict[str, str]:
        if not doc.has_frontmatter:
            self.problem(
                doc.path, 1, "frontmatter", "Missing frontmatter (a block between two `---` lines)"
            )
            return {}
        for key in required:
            if not doc.frontmatter.get(key):
                self.problem(doc.path, 1, "frontmatter", f"Missing required field: {key}")
        return doc.frontmatter

    def check_fields(self, path: str, block: Block, allowed: set[str], context: str) -> None:
        for f in block.fields:
            if f.name not in allowed:
                expected = ", ".join(f"{a}::" for a in sorted(allowed)) or "none"
                self.problem(
                    path, f.line, context, f"Unknown field {f.name}:: (expected: {expected})"
                )
        seen: set[str] = set()
        for f in block.fields:
            if f.name in seen:
                self.problem(path, f.line, context, f"Field {f.name}:: is given twice")
            seen.add(f.name)
        for line, text in block.stray:
            hint = one_colon_hint(text, ALL_FIELDS)
            if hint:
                self.problem(
                    path, line, context, f"`{hint}:` has one colon; did you mean `{hint}::`?"
                )
            else:
                self.problem(
                    path,
                    line,
                    context,
                    "Text outside a field (put it under a field such as `content::`)",
                )

    def required(self, path: str, block: Block, name: str, context: str) -> Field | None:
        f = block.get(name)
        if f is None or not f.value.strip():
            self.problem(
                path, f.line if f else block.line, context, f"Missing required field: {name}::"
            )
            return None
        return f

    def boolean(self, path: str, block: Block, name: str, context: str, default: bool) -> bool:
        f = block.get(name)
        if f is None:
            return default
        value = parse_bool(f.value)
        if value is None:
            self.problem(
                path,
                f.line,
                context,
                f"{name}:: must be true or false (or yes/no, 1/0), not {f.value!r}",
            )
            return default
        return value

    def link(self, path: str, f: Field, context: str, folder: str | None = None) -> str | None:
        target = find_link(f.value)
        if target is None:
            self.problem(
                path,
                f.line,
                context,
                f"{f.name}:: needs a wiki-link like [[../{folder or 'path'}/file]]",
            )
            return None
        if not target.startswith("../"):
            self.problem(
                path,
                f.line,
                context,
                f"Link [[{target}]] must start with ../ (relative to this file)",
            )
            return None
        resolved = resolve_link(path, target, self.existing)
        if resolved is None:
            self.problem(path, f.line, context, f"Link target does not exist: [[{target}]]")
            return None
        if folder and not resolved.startswith(folder + "/"):
            self.problem(path, f.line, context, f"Link [[{target}]] must point into {folder}/")
            return None
        return resolved

    def title(self, path: str, block: Block, context: str, *, wanted: bool) -> str:
        if wanted and not block.title:
            self.problem(
                path,
                block.line,
                context,
                f"{block.name} needs a title: `{'#' * block.level} {block.name}: <title>`",
            )
        if not wanted and block.title:
            self.problem(
                path, block.line, context, f"{block.name} takes no title (found {block.title!r})"
            )
        return block.title or ""

    def no_children(self, path: str, block: Block, ctx: str) -> None:
        for child in block.children:
            self.problem(
                path, child.line, f"{ctx} > {child.label}", f"`{block.name}` takes no segments"
            )

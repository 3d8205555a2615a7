"""The shared syntax of every content file: frontmatter, headers, `name::` fields,
critic markup and wiki-links. Line numbers are kept for every element so problems can
point at the line an author must fix."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from lens.content.problems import Problem

_HEADER = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)::(.*)$")
_ONE_COLON = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(?!:)\s*(.*)$")
_WIKI_LINK = re.compile(r"!?\[\[([^\]|]*)(?:\|[^\]]*)?\]\]")
_DRAFT = re.compile(r"(?:^|[^a-z])(?:wip|work in progress|drafts?)(?:[^a-z]|$)")
_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")

# Critic markup, rejecting every suggestion (docs/content-format.md, Shared syntax).
_CRITIC = [
    (re.compile(r"\{>>.*?<<\}", re.S), None),
    (re.compile(r"\{\+\+.*?\+\+\}", re.S), None),
    (re.compile(r"\{--(.*?)--\}", re.S), 1),
    (re.compile(r"\{~~(.*?)~>.*?~~\}", re.S), 1),
    (re.compile(r"\{==(.*?)==\}", re.S), 1),
]

TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}


def is_draft(path: str) -> bool:
    return bool(_DRAFT.search(path.lower()))


def strip_critic_markup(text: str) -> str:
    """Remove critic markup; removed spans keep their line breaks so numbers stay right."""
    for pattern, keep in _CRITIC:

        def replace(match: re.Match[str], keep: int | None = keep) -> str:
            if keep is None:
                return "\n" * match.group(0).count("\n")
            kept = match.group(keep)
            return kept + "\n" * (match.group(0).count("\n") - kept.count("\n"))

        text = pattern.sub(replace, text)
    return text


@dataclass
class Field:
    name: str
    value: str
    line: int
    inline: bool  # the value was on the `name::` line itself


@dataclass
class Block:
    """A header and what follows it up to the next header of the same or higher level."""

    level: int
    name: str  # the word(s) before the colon: "Page", "Lens", "Article-excerpt"
    title: str | None  # after the colon; None when there is no colon, "" when empty
    line: int
    fields: list[Field] = field(default_factory=list)
    children: list[Block] = field(default_factory=list)
    stray: list[tuple[int, str]] = field(default_factory=list)  # text outside any field

    @property
    def label(self) -> str:
        heading = "#" * self.level + " " + self.name
        if self.title is None:
            return heading
        return f"{heading}: {self.title}" if self.title else f"{heading}:"

    def get(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass
class Document:
    path: str
    frontmatter: dict[str, str]
    frontmatter_lines: dict[str, int]
    has_frontmatter: bool
    preamble: Block  # fields and text before the first header (level 0)
    blocks: list[Block]
    problems: list[Problem]


def parse_document(path: str, text: str, *, critic: bool = True) -> Document:
    problems: list[Problem] = []
    if critic:
        text = strip_critic_markup(text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    frontmatter: dict[str, str] = {}
    fm_lines: dict[str, int] = {}
    start = 0
    has_fm = False
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                has_fm = True
                for j in range(1, i):
                    raw = lines[j]
                    if not raw.strip():
                        continue
                    if ":" not in raw:
                        problems.append(
                            Problem(
                                path,
                                j + 1,
                                "frontmatter",
                                f"Expected `key: value`, got {raw.strip()!r}",
                            )
                        )
                        continue
                    key, value = raw.split(":", 1)
                    frontmatter[key.strip()] = _unquote(value.strip())
                    fm_lines[key.strip()] = j + 1
                start = i + 1
                break
        else:
            problems.append(Problem(path, 1, "frontmatter", "Frontmatter is not closed with `---`"))
    preamble = Block(0, "", None, start + 1)
    roots: list[Block] = []
    stack: list[Block] = [preamble]
    current_field: Field | None = None
    value_lines: list[str] = []

    def close_field() -> None:
        nonlocal current_field, value_lines
        if current_field is not None and not current_field.inline:
            current_field.value = _unescape_headings("\n".join(value_lines)).strip()
        current_field = None
        value_lines = []

    for index in range(start, len(lines)):
        raw = lines[index]
        number = index + 1
        header = _HEADER.match(raw)
        if header:
            close_field()
            level = len(header.group(1))
            text_part = header.group(2)
            if ":" in text_part:
                name, title = text_part.split(":", 1)
                block = Block(level, name.strip(), title.strip(), number)
            else:
                block = Block(level, text_part.strip(), None, number)
            while len(stack) > 1 and stack[-1].level >= level:
                stack.pop()
            parent = stack[-1]
            if parent is preamble:
                roots.append(block)
            else:
                parent.children.append(block)
            stack.append(block)
            continue
        match = _FIELD.match(raw)
        if match:
            close_field()
            value = match.group(2).strip()
            current_field = Field(
                match.group(1), _unquote(value) if value else "", number, bool(value)
            )
            stack[-1].fields.append(current_field)
            continue
        if current_field is not None and not current_field.inline:
            value_lines.append(raw)
            continue
        if raw.strip():
            stack[-1].stray.append((number, raw))
    close_field()
    return Document(path, frontmatter, fm_lines, has_fm, preamble, roots, problems)


def after_frontmatter(text: str) -> str:
    """The text after the frontmatter, as written.

    Articles and transcripts are prose: their headers and `::` are content, so their body
    is taken raw rather than through parse_document.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return "\n".join(lines[i + 1 :]).strip()
    return text.strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _unescape_headings(text: str) -> str:
    return re.sub(r"^!(#+)", r"\1", text, flags=re.M)


def one_colon_hint(line: str, known: set[str]) -> str | None:
    """`from: 1:10` was meant as `from:: 1:10`."""
    match = _ONE_COLON.match(line.strip())
    if match and match.group(1) in known:
        return match.group(1)
    return None


def parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    return None


def parse_time(value: str) -> float | None:
    """`M:SS`, `H:MM:SS` or plain seconds; minutes may exceed 59 in `M:SS`."""
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    match = _TIME.match(value)
    if not match:
        return None
    hours, minutes, secs = match.groups()
    if float(secs) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)


@dataclass(frozen=True)
class Link:
    target: str  # as written
    resolved: str | None  # repository path, or None when it does not start with ../


def find_link(value: str) -> str | None:
    match = _WIKI_LINK.search(value)
    return match.group(1).strip() if match else None


def resolve_link(from_path: str, target: str, existing: set[str] | frozenset[str]) -> str | None:
    """The repository path a link points at, trying `.md` when it is left out."""
    base = posixpath.dirname(from_path)
    joined = posixpath.normpath(posixpath.join(base, target))
    if joined.startswith("../") or joined == "..":
        return None
    for candidate in (joined, joined + ".md"):
        if candidate in existing:
            return candidate
    return None

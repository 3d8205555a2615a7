"""The shared syntax of every content file: frontmatter, headers, `name::` fields,
critic markup and wiki-links. Line numbers are kept for every element so problems can
point at the line an author must fix."""

from __future__ import annotations

import bisect
import html
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from lens.content.problems import ERROR, WARNING, Problem

_HEADER = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)::(.*)$")
_ONE_COLON = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(?!:)\s*(.*)$")
_WIKI_LINK = re.compile(r"!?\[\[([^\]|]*)(?:\|[^\]]*)?\]\]")
_DRAFT = re.compile(r"(?:^|[^a-z])(?:wip|work in progress|drafts?)(?:[^a-z]|$)")
_TIME = re.compile(r"^(?:([0-9]+):)?([0-9]+):([0-9]{1,2}(?:\.[0-9]+)?)$")
_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")

# Critic markup, rejecting every suggestion (docs/content-format.md, Shared syntax):
# additions and comments go, deletions stay, a substitution keeps the old text, a
# highlight keeps its text. Obsidian's plugins may put `{"author": ...}@@` metadata
# at the start of the marked text; it never shows.
_CRITIC_OPEN = re.compile(r"\{(\+\+|--|~~|==|>>)")
_CRITIC_CLOSE = {"++": "++}", "--": "--}", "~~": "~~}", "==": "==}", ">>": "<<}"}
_CRITIC_META = re.compile(r"^\{[^{}\n]*\}@@")
# Obsidian comments, `%%like this%%`, over one line or several: never shown.
_OBSIDIAN_COMMENT = re.compile(r"%%.*?%%", re.S)

TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}


def is_draft(path: str) -> bool:
    return bool(_DRAFT.search(path.lower()))


def strip_critic_markup(text: str) -> str:
    """Remove critic markup; removed spans keep their line breaks so numbers stay right.

    One pass over the text, finding each closer with a binary search over the closers'
    positions: an opener that is never closed (an author's typo) costs a lookup, not a
    scan to the end of the file, however many there are.
    """
    closers = {kind: [m.start() for m in re.finditer(re.escape(c), text)]
               for kind, c in _CRITIC_CLOSE.items()}  # fmt: skip
    out: list[str] = []
    done = 0
    for opener in _CRITIC_OPEN.finditer(text):
        start = opener.start()
        if start < done:
            continue  # inside a span already handled
        kind = opener.group(1)
        positions = closers[kind]
        k = bisect.bisect_left(positions, opener.end())
        if k == len(positions):
            continue  # never closed: left as written
        end = positions[k]
        inner = text[opener.end() : end]
        whole_end = end + len(_CRITIC_CLOSE[kind])
        if kind in ("++", ">>"):
            kept = ""
        else:
            old = inner.split("~>", 1)[0] if kind == "~~" else inner
            kept = strip_critic_markup(_CRITIC_META.sub("", old))  # markup inside markup
        out.append(text[done:start])
        out.append(kept + "\n" * (text.count("\n", start, whole_end) - kept.count("\n")))
        done = whole_end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def strip_comments(text: str) -> str:
    """Remove Obsidian `%%comments%%`, keeping their line breaks."""
    return _OBSIDIAN_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def clean_source(text: str) -> str:
    """What an author's file says once their notes to themselves are gone: Obsidian
    comments and critic markup (suggestions rejected), and a byte-order mark some
    editors write first. Line numbers do not move."""
    text = text.removeprefix("\ufeff")
    if "%%" in text:
        text = strip_comments(text)
    if "{" in text:
        text = strip_critic_markup(text)
    return text


# The format's own headers, by their name in any case and spacing ("#### CHAT",
# "## article excerpt"): these start a new block anywhere, even inside a field's value;
# any other heading inside a value is Markdown text.
KEYWORDS = {
    "page": "Page",
    "learning outcome": "Learning Outcome",
    "uncategorized": "Uncategorized",
    "lens": "Lens",
    "text": "Text",
    "chat": "Chat",
    "article excerpt": "Article-excerpt",
    "video excerpt": "Video-excerpt",
    "article": "Article",
    "video": "Video",
    "module": "Module",
    "lesson": "Lesson",
    "meeting": "Meeting",
    "test": "Test",
}
_SPACES = re.compile(r"[\s_-]+")


@cache
def keyword(name: str) -> str | None:
    """The format's header this name means, or None."""
    return KEYWORDS.get(_SPACES.sub(" ", name.strip().lower()))


@dataclass
class Field:
    name: str
    value: str
    line: int
    inline: bool  # the value was on the `name::` line itself
    value_line: int = 0  # where a multi-line value's first non-blank line is

    @property
    def first_line(self) -> int:
        """The line the value starts on (for problems inside it)."""
        return self.line if self.inline else (self.value_line or self.line + 1)


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
    # Every line outside a field, blank ones too (a Text body written without
    # `content::` keeps its paragraphs).
    text_lines: list[tuple[int, str]] = field(default_factory=list)

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
    frontmatter: dict[str, str]  # lists joined with ", "
    frontmatter_lines: dict[str, int]
    has_frontmatter: bool
    preamble: Block  # fields and text before the first header (level 0)
    blocks: list[Block]
    problems: list[Problem]
    frontmatter_lists: dict[str, list[str]] = field(default_factory=dict)  # every key

    def items(self, key: str) -> list[str]:
        """A frontmatter value as a list (`tags: [a, b]`, `- a` lines, or one value)."""
        return self.frontmatter_lists.get(key, [])


def parse_document(path: str, text: str, *, body: bool = True) -> Document:
    """Frontmatter, then headers with their `name::` fields, as blocks with line numbers.

    Give it `clean_source(text)`: comments and critic markup are the caller's to strip.
    `body=False` reads the frontmatter only (articles and transcripts: their body is
    prose, taken whole by `after_frontmatter`).
    """
    problems: list[Problem] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    frontmatter: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    fm_lines: dict[str, int] = {}
    start = 0
    has_fm = False
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                has_fm = True
                _read_frontmatter(path, lines, i, frontmatter, lists, fm_lines, problems)
                start = i + 1
                break
        else:
            problems.append(
                Problem(
                    path,
                    1,
                    "frontmatter",
                    "The frontmatter is not closed with a `---` line",
                    ERROR,
                    "frontmatter.unclosed",
                )
            )
    preamble = Block(0, "", None, start + 1)
    if not body:
        return Document(path, frontmatter, fm_lines, has_fm, preamble, [], problems, lists)
    roots: list[Block] = []
    stack: list[Block] = [preamble]
    current_field: Field | None = None
    value_lines: list[str] = []

    def close_field() -> None:
        nonlocal current_field, value_lines
        if current_field is not None and not current_field.inline:
            current_field.value = _unescape_headings("\n".join(value_lines)).strip()
            blank = next((i for i, line in enumerate(value_lines) if line.strip()), 0)
            current_field.value_line = current_field.line + 1 + blank
        current_field = None
        value_lines = []

    for index in range(start, len(lines)):
        raw = lines[index]
        number = index + 1
        header = _HEADER.match(raw)
        if header and header.group(2):
            level = len(header.group(1))
            text_part = header.group(2)
            name, colon, title = text_part.partition(":")
            known = keyword(name)
            if known is None and current_field is not None and not current_field.inline:
                # `## Why it matters` inside a `content::` value: Markdown, not a block.
                value_lines.append(raw)
                continue
            if known is None and stack[-1].name == "Text":
                # The same in a Text body written without `content::`.
                stack[-1].stray.append((number, raw))
                stack[-1].text_lines.append((number, raw))
                continue
            close_field()
            block = Block(level, known or name.strip(), title.strip() if colon else None, number)
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
        stack[-1].text_lines.append((number, raw))
    close_field()
    return Document(path, frontmatter, fm_lines, has_fm, preamble, roots, problems, lists)


_FM_KEY = re.compile(r"^([A-Za-z_][\w .-]*?)\s*:(?:\s+(.*))?\s*$")
_FM_ITEM = re.compile(r"^\s*-\s*(.*?)\s*$")


def _read_frontmatter(
    path: str,
    lines: list[str],
    end: int,
    frontmatter: dict[str, str],
    lists: dict[str, list[str]],
    fm_lines: dict[str, int],
    problems: list[Problem],
) -> None:
    """The YAML an author's editor writes: `key: value`, `key: [a, b]`, `key:` with
    `- item` lines, and `key: >` or `key: |` with indented lines. Not all of YAML:
    what it cannot read is a warning, and the line is left out."""
    key: str | None = None
    block_style: str | None = None
    listing = False  # `key:` with nothing after it: `- item` lines may follow at column 0
    for j in range(1, end):
        raw = lines[j]
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        item_at_zero = listing and raw.startswith("-")
        if key is not None and (raw[:1] in (" ", "\t") or item_at_zero):
            item = _FM_ITEM.match(raw)
            if block_style is None and item:
                lists[key].append(_unquote(item.group(1)))
                frontmatter[key] = ", ".join(lists[key])
                continue
            if block_style is not None:
                joiner = "\n" if block_style.startswith("|") else " "
                value = (frontmatter[key] + joiner + raw.strip()).strip()
                frontmatter[key] = value
                lists[key] = [value]
                continue
        match = _FM_KEY.match(raw)
        if match is None:
            problems.append(
                Problem(
                    path,
                    j + 1,
                    "frontmatter",
                    f"Expected `key: value`, got {raw.strip()!r}; the line is left out",
                    WARNING,
                    "frontmatter.line",
                )
            )
            key = None
            listing = False
            continue
        key, value = match.group(1), (match.group(2) or "").strip()
        fm_lines[key] = j + 1
        listing = not value
        block_style = value if value in (">", "|", ">-", "|-") else None
        if block_style is not None:
            frontmatter[key], lists[key] = "", []
        elif value.startswith("[") and value.endswith("]") and not value.startswith("[["):
            items = [_unquote(v.strip()) for v in value[1:-1].split(",") if v.strip()]
            lists[key], frontmatter[key] = items, ", ".join(items)
        else:
            value = _unquote(value)
            frontmatter[key] = value
            lists[key] = [value] if value else []


def after_frontmatter(text: str) -> str:
    """The text after the frontmatter, as written.

    Articles and transcripts are prose: their headers and `::` are content, so their body
    is taken raw rather than through parse_document.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return "\n".join(lines[i + 1 :]).strip()
    return "\n".join(lines).strip()


def body_line(text: str) -> int:
    """The line `after_frontmatter(text)` starts on, for problems inside the body."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = 0
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                first = i + 1
                break
    while first < len(lines) and not lines[first].strip():
        first += 1
    return first + 1


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _unescape_headings(text: str) -> str:
    """`!## Heading` and `\\## Heading` inside a value are the Markdown heading."""
    return re.sub(r"^[!\\](#+)", r"\1", text, flags=re.M)


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
    if ":" not in value:
        # Plain seconds, digits only: float() would also take "inf", "1e999" and "1_0".
        return float(value) if _SECONDS.match(value) else None
    match = _TIME.match(value)
    if not match:
        return None
    hours, minutes, secs = match.groups()
    if float(secs) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)


def find_link(value: str) -> str | None:
    """The target of the first wiki-link in `value` (`[[target|shown]]`, `[[target#part]]`)."""
    match = _WIKI_LINK.search(value)
    if match is None:
        return None
    return match.group(1).split("#", 1)[0].strip()


_COPY = re.compile(r"^(?:copy of (?P<a>.+)|(?P<b>.+?)(?: \d+| copy(?: \d+)?| \(\d+\)))$", re.I)


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


def copy_of(path: str, others: Iterable[str]) -> str | None:
    """The file of `others` that `path` is a copy of, as editors and file managers name
    copies (`Name 1.md`, `Name copy.md`, `Name (2).md`, `Copy of Name.md` of `Name.md`),
    or None. Only a name that another file carries makes a copy: `Week 1.md` is not one
    unless there is a `Week.md`."""
    match = _COPY.match(_stem(path))
    if match is None:
        return None
    base = (match.group("a") or match.group("b")).lower()
    folder = posixpath.dirname(path)
    for other in others:
        if other != path and posixpath.dirname(other) == folder and _stem(other).lower() == base:
            return other
    return None


def preferred(paths: Iterable[str]) -> str:
    """Of several files that claim one thing (an id, a slug, a link's name): the one that
    is not a copy of another of them, and among those the path that sorts first."""
    group = list(paths)
    return min(group, key=lambda p: (copy_of(p, group) is not None, p))


class Links:
    """Resolves wiki-links as Obsidian does, so a vault's links work as its authors see
    them: relative to the linking file (`[[../Lenses/X]]`), from the repository's root
    (`[[Lenses/X]]`), or by file name alone (`[[X]]`, Obsidian's shortest form), each
    with or without `.md`."""

    def __init__(self, existing: Iterable[str]) -> None:
        self.existing = frozenset(existing)
        self._by_name: dict[str, list[str]] = {}
        for path in sorted(self.existing):
            name = posixpath.basename(path)
            self._by_name.setdefault(name.lower(), []).append(path)
            stem, ext = posixpath.splitext(name)
            if ext.lower() == ".md":
                self._by_name.setdefault(stem.lower(), []).append(path)

    def resolve(
        self, from_path: str, target: str, folder: str | None = None
    ) -> tuple[str | None, list[str]]:
        """The path a link names, and the other files it could also have meant (for a
        name alone that several files carry: those in `folder` first, then those whose
        name matches in case too, and of the rest the first by `preferred`)."""
        target = target.strip()
        if not target:
            return None, []
        base = posixpath.dirname(from_path)
        for joined in (
            posixpath.normpath(posixpath.join(base, target)),
            posixpath.normpath(target.lstrip("/")),
        ):
            if joined.startswith("../") or joined == "..":
                continue
            for candidate in (joined, joined + ".md"):
                if candidate in self.existing:
                    return candidate, []
        if "/" not in target:
            name = posixpath.basename(target)
            matches = self._by_name.get(name.lower(), [])
            if folder:
                matches = [m for m in matches if m.startswith(folder + "/")] or matches
            exact = [m for m in matches if posixpath.basename(m) in (name, name + ".md")]
            matches = exact or matches
            if matches:
                chosen = preferred(matches)
                return chosen, [m for m in matches if m != chosen]
        return None, []


# Where a Markdown or HTML body names an address: `[text](url)`, `![alt](url)`, `<url>`,
# `[ref]: url`, and `href=`/`src=` attributes.
_LINK_TARGETS = re.compile(
    r"\]\(\s*<?(?P<md>[^\s)>]+)"
    r"|<(?P<auto>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>"
    r"|^[ \t]{0,3}\[(?!\^)[^\]]+\]:\s*<?(?P<ref>\S+?)>?(?:\s|$)"
    r"|\b(?:href|src|action|formaction|data|poster|xlink:href)\s*=\s*"
    r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<attr>[^\s>]+))",
    re.MULTILINE | re.IGNORECASE,
)
# Code shows addresses as text, it does not link them: fenced blocks and `spans`.
_CODE = re.compile(r"^[ \t]{0,3}(```|~~~).*?^[ \t]{0,3}\1[^\n]*$|`[^`\n]+`", re.M | re.S)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
LINK_SCHEMES = {"http", "https", "mailto"}
# Schemes that run code or read the reader's machine: the file is not served.
UNSAFE_SCHEMES = {"javascript", "vbscript", "data", "file", "blob"}


def link_problems(path: str, text: str) -> list[Problem]:
    """Addresses in a body that are not http(s), mailto or relative. One that could run
    code (`javascript:`, `data:` ...) is an error (`link.unsafe`: the file is not served);
    any other scheme (`obsidian://`, `ftp:`) a warning (`link.scheme`): it is shown as
    text, not as a link."""
    problems = []
    text = _CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for match in _LINK_TARGETS.finditer(text):
        target = next(g for g in match.groups() if g is not None)
        # Entities and escapes would hide a scheme from a plain reading: decode them first.
        decoded = html.unescape(target.replace("\\", ""))
        scheme = _SCHEME.match(re.sub(r"[\x00-\x20]", "", decoded))
        if scheme is None or scheme.group(1).lower() in LINK_SCHEMES:
            continue
        name = scheme.group(1).lower()
        line = text.count("\n", 0, match.start()) + 1
        if name in UNSAFE_SCHEMES:
            problems.append(
                Problem(path, line, "link", f"`{name}:` addresses can run code in the reader's "
                        "browser; use an http(s) or relative link", ERROR, "link.unsafe")
            )  # fmt: skip
        else:
            problems.append(
                Problem(path, line, "link", f"`{name}:` addresses are shown as text, not as links; "
                        "only http(s), mailto and relative links are served", WARNING,
                        "link.scheme")
            )  # fmt: skip
    return problems

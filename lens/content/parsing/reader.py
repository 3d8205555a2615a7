"""The state of one repository read and the checks every file kind shares.

A Reader gathers problems by path, collects ids, and checks the rules that sit on the
shared syntax of lens.content.syntax: frontmatter keys, which `name::` fields a header
allows, booleans, header titles and wiki-links. It also holds what the kinds read first
(articles, transcripts, lenses, learning outcomes) for the kinds that use them.

Forgiving where authors are sloppy, strict where it matters: only what stops a file
from being served is an error; the rest is a warning (lens/content/problems.py).
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote

from lens.content.parsed import Article, ContentSet, Course, Segment, Transcript
from lens.content.problems import ERROR, WARNING, Level, Problem
from lens.content.syntax import (
    Block,
    Document,
    Field,
    Links,
    find_link,
    one_colon_hint,
    parse_bool,
)

CHAT_V2 = {
    "instructions",
    "hidePreviousContentFromUser",
    "hidePreviousContentFromTutor",
    "optional",
}
CHAT_V1 = {"instructions", "showUserPreviousContent", "showTutorPreviousContent", "optional"}
# Which headers each field belongs to, for "did you mean" on a misplaced field.
FIELD_HOMES = {
    "content": "Text",
    "instructions": "Chat",
    "hidePreviousContentFromUser": "Chat",
    "hidePreviousContentFromTutor": "Chat",
    "showUserPreviousContent": "Chat (v1)",
    "showTutorPreviousContent": "Chat (v1)",
    "source": "Lens, Learning Outcome, Article, Video and Test",
    "optional": "sections and segments",
    "id": "Page",
    "from": "Article-excerpt and Video-excerpt",
    "to": "Article-excerpt and Video-excerpt",
}
ALL_FIELDS = set(FIELD_HOMES)
# Properties Obsidian and its plugins write into any note: never a problem.
EDITOR_KEYS = {
    "aliases",
    "alias",
    "cssclass",
    "cssclasses",
    "publish",
    "created",
    "modified",
    "updated",
    "date created",
    "date modified",
    "permalink",
}
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


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
    tldr: str | None = None
    summary_for_tutor: str | None = None


@dataclass
class OutcomeDef:
    """A valid learning outcome: the lenses a module's `# Learning Outcome:` expands to."""

    path: str
    id: str
    title: str
    lenses: list[tuple[str, bool, int]]  # lens path, optional, line of its `## Lens:`


@dataclass
class Reader:
    files: Mapping[str, str]
    out: ContentSet = field(default_factory=ContentSet)
    existing: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()  # image paths in the repository
    links: Links = field(default_factory=lambda: Links(()))
    asset_links: Links = field(default_factory=lambda: Links(()))
    articles: dict[str, Article] = field(default_factory=dict)
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    lenses: dict[str, LensDef] = field(default_factory=dict)
    outcomes: dict[str, OutcomeDef] = field(default_factory=dict)
    courses: dict[str, Course] = field(default_factory=dict)  # by path, until settled
    module_slug_claims: dict[str, str] = field(default_factory=dict)  # path -> slug
    module_slug_lines: dict[str, int] = field(default_factory=dict)
    module_alias_lines: dict[str, int] = field(default_factory=dict)
    course_slug_lines: dict[str, int] = field(default_factory=dict)
    # id (lower case) -> every (path, line) that claims it; duplicates are settled once
    # every file is read (loader.py).
    ids: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    # -- problems -----------------------------------------------------------------------

    def problem(
        self, path: str, line: int, context: str, message: str, *, rule: str, level: Level = ERROR
    ) -> None:
        self.out.problems.setdefault(path, []).append(
            Problem(path, line, context, message, level, rule)
        )

    def warn(self, path: str, line: int, context: str, message: str, *, rule: str) -> None:
        self.problem(path, line, context, message, rule=rule, level=WARNING)

    def ok(self, path: str) -> bool:
        """No errors so far: the file can be served (warnings do not count)."""
        return not any(p.is_error for p in self.out.problems.get(path, ()))

    # -- ids ----------------------------------------------------------------------------

    def claim_id(self, path: str, line: int, context: str, value: str) -> None:
        try:
            uuid.UUID(value)
        except ValueError:
            self.warn(
                path,
                line,
                context,
                f"id {value!r} is not a UUID; it is used as written",
                rule="id.format",
            )
        claims = self.ids.setdefault(value.strip().lower(), [])
        if (path, line) not in claims:
            claims.append((path, line))

    # -- frontmatter ----------------------------------------------------------------------

    def frontmatter(
        self, doc: Document, required: Iterable[str], known: Iterable[str]
    ) -> dict[str, str]:
        """The frontmatter, with an error per required key that is missing or blank and a
        warning per key this kind of file does not use."""
        if not doc.has_frontmatter:
            self.problem(
                doc.path,
                1,
                "frontmatter",
                "Missing frontmatter (a block between two `---` lines)",
                rule="frontmatter.missing",
            )
            return {}
        for key in required:
            if not doc.frontmatter.get(key, "").strip():
                self.problem(
                    doc.path,
                    doc.frontmatter_lines.get(key, 1),
                    "frontmatter",
                    f"Missing required field `{key}`"
                    + (" (it is blank)" if key in doc.frontmatter else ""),
                    rule="frontmatter.required",
                )
        known = set(known) | set(required)
        for key, line in doc.frontmatter_lines.items():
            if key not in known and key.lower() not in EDITOR_KEYS:
                self.warn(
                    doc.path,
                    line,
                    "frontmatter",
                    f"Unknown field `{key}`{_did_you_mean(key, known)}; it is ignored",
                    rule="frontmatter.unknown-field",
                )
            if find_link(doc.frontmatter.get(key, "")) is not None:
                self.warn(
                    doc.path,
                    line,
                    "frontmatter",
                    f"`{key}` holds a wiki-link; frontmatter values are read as plain text",
                    rule="frontmatter.wiki-link",
                )
        return doc.frontmatter

    def slug(self, doc: Document) -> str:
        """The frontmatter slug, checked: lowercase letters, digits and hyphens."""
        value = doc.frontmatter.get("slug", "").strip()
        if value and not SLUG.match(value):
            self.problem(
                doc.path,
                doc.frontmatter_lines.get("slug", 1),
                "frontmatter",
                f"slug {value!r} must be lowercase letters, digits and single hyphens "
                f"(like {_slugify(value)!r})",
                rule="slug.format",
            )
        return value

    # -- fields ---------------------------------------------------------------------------

    def check_fields(self, path: str, block: Block, allowed: set[str], context: str) -> None:
        for f in block.fields:
            if f.name not in allowed:
                self.warn(
                    path,
                    f.line,
                    context,
                    f"{_unknown_field(f.name, allowed)}; it is ignored",
                    rule="field.unknown",
                )
        seen: set[str] = set()
        for f in block.fields:
            if f.name in seen:
                self.warn(
                    path,
                    f.line,
                    context,
                    f"Field {f.name}:: is given twice; the first one is used",
                    rule="field.duplicate",
                )
            seen.add(f.name)
        for line, text in block.stray:
            hint = one_colon_hint(text, ALL_FIELDS)
            if hint:
                self.warn(
                    path,
                    line,
                    context,
                    f"`{hint}:` has one colon, so it is text, not a field; "
                    f"did you mean `{hint}::`?",
                    rule="field.one-colon",
                )
            else:
                self.warn(
                    path,
                    line,
                    context,
                    "Text outside a field is left out (put it under a field such as `content::`)",
                    rule="text.stray",
                )

    def required(self, path: str, block: Block, name: str, context: str) -> Field | None:
        f = block.get(name)
        if f is None or not f.value.strip():
            self.problem(
                path,
                f.line if f else block.line,
                context,
                f"Missing required field {name}::" + (" (it is empty)" if f else ""),
                rule="field.required",
            )
            return None
        return f

    def boolean(self, path: str, block: Block, name: str, context: str, default: bool) -> bool:
        f = block.get(name)
        if f is None:
            return default
        value = parse_bool(f.value)
        if value is None:
            self.warn(
                path,
                f.line,
                context,
                f"{name}:: must be true or false (or yes/no, 1/0), not {f.value!r}; "
                f"read as {'true' if default else 'false'}",
                rule="field.boolean",
            )
            return default
        return value

    def link(self, path: str, f: Field, context: str, folder: str | None = None) -> str | None:
        """The file a `name:: [[...]]` field links, or None with a warning saying why."""
        target = find_link(f.value)
        if target is None:
            self.problem(
                path,
                f.line,
                context,
                f"{f.name}:: needs a wiki-link like [[../{folder or 'path'}/file]]",
                rule="link.syntax",
            )
            return None
        resolved, others = self.links.resolve(path, target, folder)
        if resolved is None:
            self.warn(
                path,
                f.line,
                context,
                f"Link target does not exist: [[{target}]]",
                rule="link.missing",
            )
            return None
        if others:
            self.warn(
                path,
                f.line,
                context,
                f"[[{target}]] could mean {resolved} or {', '.join(others)}; "
                f"{resolved} is used (write the path to choose)",
                rule="link.ambiguous",
            )
        if folder and not resolved.startswith(folder + "/"):
            self.warn(
                path,
                f.line,
                context,
                f"Link [[{target}]] must point into {folder}/ (it points to {resolved})",
                rule="link.folder",
            )
            return None
        return resolved

    def title(self, path: str, block: Block, context: str, *, wanted: bool) -> str:
        if wanted and not (block.title or "").strip():
            self.warn(
                path,
                block.line,
                context,
                f"{block.name} has no title: `{'#' * block.level} {block.name}: <title>`",
                rule="title.missing",
            )
        if not wanted and block.title:
            self.warn(
                path,
                block.line,
                context,
                f"{block.name} takes no title ({block.title!r} is ignored)",
                rule="title.unexpected",
            )
        return (block.title or "").strip()

    def no_children(self, path: str, block: Block, ctx: str) -> None:
        for child in block.children:
            self.warn(
                path,
                child.line,
                f"{ctx} > {child.label}",
                f"`{block.name}` takes no segments; this one is left out",
                rule="segment.unexpected",
            )


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f" (did you mean `{close[0]}`?)" if close else ""


def _unknown_field(name: str, allowed: set[str]) -> str:
    home = FIELD_HOMES.get(name)
    if home is not None:
        return f"Field {name}:: does not belong here (it is a field of {home})"
    close = difflib.get_close_matches(name, sorted(allowed | ALL_FIELDS), n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in allowed | ALL_FIELDS}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    expected = ", ".join(f"{a}::" for a in sorted(allowed)) or "none"
    hint = f"did you mean {close[0]}::? " if close else ""
    return f"Unknown field {name}:: ({hint}expected: {expected})"


def _slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "my-module"


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif")
ASSET_URL = "/content/assets/"
# An Obsidian embed, `![[x.png]]` / `![[x.png|300]]`, or a Markdown image `![alt](path)`.
_IMAGE = re.compile(
    r"!\[\[(?P<target>[^\]|#]+)(?:#[^\]|]*)?(?:\|(?P<extra>[^\]]*))?\]\]"
    r"|!\[(?P<alt>[^\]]*)\]\(\s*<?(?P<src>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_SIZE = re.compile(r"^(\d+)(?:x(\d+))?$")


def resolve_images(
    reader: Reader, path: str, line: int, context: str, text: str, *, check: bool = True
) -> str:
    """Images in Markdown text, pointed at the repository's copy: Obsidian embeds
    (`![[diagram.png]]`, `![[diagram.png|300]]` or `|300x200` for a size) and Markdown
    images with a relative path (`![A diagram](attachments/diagram.png)`). A missing
    image is left out, with a warning when `check`; web addresses and files that are not
    images are left as they are. A size travels in the URL's fragment
    (`#lens-size=300`), which lens/web/markdown turns into width and height."""
    if "![" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        embed = match.group("target") is not None
        target = (match.group("target") if embed else unquote(match.group("src"))).strip()
        if not embed and ("://" in target or target.startswith(("/", "data:", "#"))):
            return match.group(0)
        if not target.lower().split("?", 1)[0].endswith(IMAGE_EXTENSIONS):
            return match.group(0)  # a note embedded in a note, a PDF: not an image
        resolved, _ = reader.asset_links.resolve(path, target.split("?", 1)[0])
        if resolved is None:
            if check:
                shown = f"![[{target}]]" if embed else target
                reader.warn(
                    path,
                    line + text.count("\n", 0, match.start()),
                    context,
                    f"Image not found in the repository (or larger than 5 MB): {shown}; "
                    "it is left out",
                    rule="embed.missing",
                )
            return ""
        reader.out.assets_used.add(resolved)
        url = ASSET_URL + quote(resolved)
        if not embed:
            return f"![{match.group('alt')}]({url})"
        extra = (match.group("extra") or "").strip()
        size = _SIZE.match(extra)
        name = target.rsplit("/", 1)[-1]
        if size:
            return f"![{_alt(name)}]({url}#lens-size={extra})"
        return f"![{_alt(extra or name)}]({url})"

    return _IMAGE.sub(one, text)


def _alt(text: str) -> str:
    return text.replace("[", "").replace("]", "")

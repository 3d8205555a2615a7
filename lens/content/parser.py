"""Reads a content repository (path -> text) into a ContentSet, collecting problems.

Every rule of CONTENT-FORMAT.md lives here. A problem makes its file invalid; a module is
served only when it and every file it uses are valid, and one broken file never stops
the others from loading.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lens.content.parsed import (
    Article,
    ArticleExcerpt,
    ChatSegment,
    ContentSet,
    Course,
    CourseModule,
    Module,
    Section,
    Segment,
    TextSegment,
    Timing,
    Transcript,
    Unit,
    VideoExcerpt,
)
from lens.content.problems import Problem
from lens.content.syntax import (
    Block,
    Document,
    Field,
    find_link,
    is_draft,
    one_colon_hint,
    parse_bool,
    parse_document,
    resolve_link,
)

FOLDERS = {
    "courses": "course",
    "modules": "module",
    "Learning Outcomes": "outcome",
    "Lenses": "lens",
    "articles": "article",
    "video_transcripts": "transcript",
}
CHAT_V2 = {
    "instructions",
    "hidePreviousContentFromUser",
    "hidePreviousContentFromTutor",
    "optional",
}
CHAT_V1 = {"instructions", "showUserPreviousContent", "showTutorPreviousContent", "optional"}
ALL_FIELDS = CHAT_V2 | CHAT_V1 | {"content", "source", "optional", "id", "from", "to"}
_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")
_YOUTUBE = re.compile(r"(?:[?&]v=|youtu\.be/|/embed/)([A-Za-z0-9_-]{6,})")


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


def youtube_id(url: str) -> str | None:
    match = _YOUTUBE.search(url)
    return match.group(1) if match else None


@dataclass
class _LensDef:
    path: str
    id: str
    kind: Literal["article", "video"]
    title: str
    segments: tuple[Segment, ...]
    article: Article | None
    video: Transcript | None


@dataclass
class _OutcomeDef:
    path: str
    id: str
    lenses: list[tuple[str, bool]]  # lens path, optional


@dataclass
class _Loader:
    files: Mapping[str, str]
    out: ContentSet = field(default_factory=ContentSet)
    existing: frozenset[str] = frozenset()
    articles: dict[str, Article] = field(default_factory=dict)
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    lenses: dict[str, _LensDef] = field(default_factory=dict)
    outcomes: dict[str, _OutcomeDef] = field(default_factory=dict)
    ids: dict[str, tuple[str, int]] = field(default_factory=dict)

    # -- helpers --------------------------------------------------------------------

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

    # -- articles and transcripts ---------------------------------------------------

    def load_article(self, path: str) -> None:
        doc = parse_document(path, self.files[path], critic=False)
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["title", "author", "source_url"])
        body = _body(self.files[path])
        if self.ok(path):
            self.articles[path] = Article(
                path, fm["title"], fm["author"], fm["source_url"], fm.get("date"), body
            )

    def load_transcript(self, path: str) -> None:
        doc = parse_document(path, self.files[path], critic=False)
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["url"])
        video_id = youtube_id(fm.get("url", ""))
        if fm.get("url") and video_id is None:
            self.problem(
                path,
                doc.frontmatter_lines.get("url", 1),
                "frontmatter",
                f"url is not a YouTube video URL: {fm['url']}",
            )
        timings: tuple[Timing, ...] = ()
        stamps = path[: -len(".md")] + ".timestamps.json"
        if stamps in self.files:
            timings = self.load_timestamps(stamps)
        if self.ok(path) and video_id:
            self.transcripts[path] = Transcript(
                path,
                fm["url"],
                video_id,
                fm.get("title", ""),
                fm.get("channel", ""),
                _body(self.files[path]),
                timings,
            )

    def load_timestamps(self, path: str) -> tuple[Timing, ...]:
        self.out.problems.setdefault(path, [])
        try:
            data = json.loads(self.files[path])
        except ValueError as exc:
            self.problem(path, getattr(exc, "lineno", 1), "", f"Not valid JSON: {exc}")
            return ()
        if not isinstance(data, list):
            self.problem(path, 1, "", 'Expected a JSON array of {"text", "start"} entries')
            return ()
        timings = []
        for n, entry in enumerate(data):
            start = parse_time(str(entry.get("start", ""))) if isinstance(entry, dict) else None
            if start is None or not isinstance(entry.get("text"), str):
                self.problem(
                    path, 1, f"entry {n}", 'Each entry needs "text" and "start" as "M:SS.ss"'
                )
                continue
            timings.append(Timing(start, entry["text"]))
        return tuple(timings)

    # -- segments -------------------------------------------------------------------

    def segments(
        self,
        path: str,
        parent: Block,
        context: str,
        *,
        resource: str | None,
        dialect: int,
        resource_path: str | None,
    ) -> list[Segment]:
        """Text, Chat and excerpt segments under a section or lens resource."""
        out: list[Segment] = []
        last_end: int | None = None
        allowed = {"Text", "Chat"}
        if resource == "article":
            allowed.add("Article-excerpt")
        if resource == "video":
            allowed.add("Video-excerpt")
        for block in parent.children:
            ctx = f"{context} > {block.label}"
            if block.name not in allowed:
                where = (
                    "here"
                    if block.name in {"Text", "Chat", "Article-excerpt", "Video-excerpt"}
                    else "at all"
                )
                self.problem(
                    path,
                    block.line,
                    ctx,
                    f"Segment `{block.name}` is not allowed {where} "
                    f"(expected: {', '.join(sorted(allowed))})",
                )
                continue
            # Segments may carry a title (`## Chat: About risk`); it is only a label.
            optional = self.boolean(path, block, "optional", ctx, False)
            if block.name == "Text":
                self.check_fields(path, block, {"content", "optional"}, ctx)
                f = self.required(path, block, "content", ctx)
                out.append(TextSegment(f.value if f else "", optional))
            elif block.name == "Chat":
                out.append(self.chat(path, block, ctx, dialect, optional))
            elif block.name == "Article-excerpt":
                self.check_fields(path, block, {"from", "to", "optional"}, ctx)
                excerpt = self.article_excerpt(path, block, ctx, resource_path, last_end, optional)
                if excerpt:
                    last_end = excerpt.end
                    out.append(excerpt)
            else:
                self.check_fields(path, block, {"from", "to", "optional"}, ctx)
                video = self.video_excerpt(path, block, ctx, resource_path, optional)
                if video:
                    out.append(video)
        return out

    def chat(self, path: str, block: Block, ctx: str, dialect: int, optional: bool) -> ChatSegment:
        self.check_fields(path, block, CHAT_V2 if dialect == 2 else CHAT_V1, ctx)
        f = self.required(path, block, "instructions", ctx)
        if dialect == 2:
            hide_user = self.boolean(path, block, "hidePreviousContentFromUser", ctx, False)
            hide_tutor = self.boolean(path, block, "hidePreviousContentFromTutor", ctx, False)
        else:
            hide_user = not self.boolean(path, block, "showUserPreviousContent", ctx, True)
            hide_tutor = not self.boolean(path, block, "showTutorPreviousContent", ctx, True)
        return ChatSegment(f.value if f else "", hide_user, hide_tutor, optional)

    def article_excerpt(
        self,
        path: str,
        block: Block,
        ctx: str,
        article_path: str | None,
        last_end: int | None,
        optional: bool,
    ) -> ArticleExcerpt | None:
        article = self.articles.get(article_path or "")
        if article is None:
            return None  # the source problem is already reported
        body = article.body
        lowered = body.lower()
        start, end = 0, len(body)
        anchor_from = block.get("from")
        anchor_to = block.get("to")
        if anchor_from and anchor_from.value:
            needle = anchor_from.value.lower()
            count = lowered.count(needle)
            if count != 1:
                self.problem(
                    path,
                    anchor_from.line,
                    ctx,
                    _anchor_message("from", anchor_from.value, count, article.path),
                )
                return None
            start = lowered.index(needle)
        if anchor_to and anchor_to.value:
            needle = anchor_to.value.lower()
            count = lowered.count(needle, start)
            if count != 1:
                self.problem(
                    path,
                    anchor_to.line,
                    ctx,
                    _anchor_message("to", anchor_to.value, count, article.path, after_from=True),
                )
                return None
            end = lowered.index(needle, start) + len(needle)
        omitted = ""
        if last_end is not None and start > last_end:
            omitted = body[last_end:start].strip()
        return ArticleExcerpt(body[start:end].strip(), start, end, omitted, optional)

    def video_excerpt(
        self, path: str, block: Block, ctx: str, transcript_path: str | None, optional: bool
    ) -> VideoExcerpt | None:
        start: float = 0.0
        end: float | None = None
        bad = False
        for name in ("from", "to"):
            f = block.get(name)
            if f is None or not f.value:
                continue
            value = parse_time(f.value)
            if value is None:
                self.problem(
                    path,
                    f.line,
                    ctx,
                    f"{name}:: must be a time like 1:10, 1:02:03 or 70, not {f.value!r}",
                )
                bad = True
            elif name == "from":
                start = value
            else:
                end = value
        if end is not None and end <= start:
            self.problem(path, block.line, ctx, "to:: must be after from::")
            bad = True
        transcript = self.transcripts.get(transcript_path or "")
        if bad or transcript is None:
            return None
        words = [
            t.text
            for t in transcript.timings
            if t.start >= start and (end is None or t.start <= end)
        ]
        return VideoExcerpt(start, end, " ".join(w.strip() for w in words if w.strip()), optional)

    # -- lenses and learning outcomes -------------------------------------------------

    def load_lens(self, path: str) -> None:
        doc = parse_document(path, self.files[path])
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["id"])
        if "title" in doc.frontmatter:
            self.problem(
                path,
                doc.frontmatter_lines["title"],
                "frontmatter",
                "A lens takes no title field; the title comes from the "
                "`### Article:` or `### Video:` header",
            )
        if fm.get("id"):
            self.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
        self.check_fields(path, doc.preamble, set(), "")
        resources = [b for b in _walk(doc.blocks) if b.name in ("Article", "Video")]
        others = [b for b in doc.blocks if b.name not in ("Article", "Video")]
        for b in others:
            if b.level < 3 or b.name not in ("Text", "Chat", "Article-excerpt", "Video-excerpt"):
                self.problem(
                    path,
                    b.line,
                    b.label,
                    f"Unknown section `{b.name}` "
                    "(a lens has one `### Article:` or `### Video:` section)",
                )
        if len(resources) != 1:
            line = resources[1].line if len(resources) > 1 else 1
            self.problem(
                path,
                line,
                "",
                "A lens needs exactly one `### Article:` or `### Video:` section, "
                f"found {len(resources)}",
            )
            return
        resource = resources[0]
        kind: Literal["article", "video"] = "article" if resource.name == "Article" else "video"
        ctx = resource.label
        title = self.title(path, resource, ctx, wanted=True)
        self.check_fields(path, resource, {"source"}, ctx)
        source = self.required(path, resource, "source", ctx)
        folder = "articles" if kind == "article" else "video_transcripts"
        target = self.link(path, source, ctx, folder) if source else None
        if target and not (target in self.articles or target in self.transcripts):
            self.problem(
                path,
                source.line if source else 1,
                ctx,
                f"The linked file {target} is invalid (see its own problems)",
            )
        segments = self.segments(
            path, resource, ctx, resource=kind, dialect=2, resource_path=target
        )
        named = "Article-excerpt" if kind == "article" else "Video-excerpt"
        if not any(b.name == named for b in resource.children):
            self.problem(
                path, resource.line, ctx, f"A {kind} lens needs at least one `#### {named}`"
            )
        if self.ok(path) and target:
            self.lenses[path] = _LensDef(
                path,
                fm["id"],
                kind,
                title,
                tuple(segments),
                self.articles.get(target),
                self.transcripts.get(target),
            )

    def load_outcome(self, path: str) -> None:
        doc = parse_document(path, self.files[path])
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["id"])
        if fm.get("id"):
            self.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
        self.check_fields(path, doc.preamble, set(), "")
        lenses: list[tuple[str, bool]] = []
        tests = 0
        for block in doc.blocks:
            ctx = block.label
            if block.name == "Test":
                tests += 1
                self.check_fields(path, block, {"source"}, ctx)
                if tests > 1:
                    self.problem(
                        path, block.line, ctx, "A learning outcome has at most one `## Test:`"
                    )
                src = block.get("source")
                if src and src.value.strip():
                    self.link(path, src, ctx)
            elif block.name == "Lens":
                self.check_fields(path, block, {"source", "optional"}, ctx)
                optional = self.boolean(path, block, "optional", ctx, False)
                src = self.required(path, block, "source", ctx)
                target = self.link(path, src, ctx, "Lenses") if src else None
                if target:
                    lenses.append((target, optional))
            else:
                self.problem(
                    path,
                    block.line,
                    ctx,
                    f"Unknown section `{block.name}` (expected `## Test:` or `## Lens:`)",
                )
        if not lenses and not any(b.name == "Lens" for b in doc.blocks):
            self.problem(path, 1, "", "A learning outcome needs at least one `## Lens:`")
        if self.ok(path):
            self.outcomes[path] = _OutcomeDef(path, fm["id"], lenses)

    # -- modules --------------------------------------------------------------------

    def load_module(self, path: str) -> None:
        text = self.files[path]
        doc = parse_document(path, text)
        names = {b.name for b in doc.blocks}
        dialect: Literal[1, 2] = 1 if names and names <= {"Video", "Article", "Text", "Chat"} else 2
        if dialect == 1:
            doc = parse_document(path, text, critic=False)  # v1 predates critic markup
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["id", "slug", "title"] if dialect == 2 else ["slug", "title"])
        if dialect == 2 and fm.get("id"):
            self.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
        self.check_fields(path, doc.preamble, set(), "")
        if not doc.blocks:
            self.problem(
                path,
                1,
                "",
                "A module needs at least one section (`# Page:`, `# Learning Outcome:`, ...)",
            )
        sections = (
            self.v2_sections(path, doc)
            if dialect == 2
            else self.v1_sections(path, doc, fm.get("slug", ""))
        )
        if self.ok(path):
            self.out.modules[path] = Module(
                path,
                fm.get("id"),
                fm["slug"],
                fm["title"],
                dialect,
                tuple(sections),
                fm.get("discussion") or None,
            )

    def v2_sections(self, path: str, doc: Document) -> list[Section]:
        sections: list[Section] = []
        for block in doc.blocks:
            ctx = block.label
            if block.level != 1 or block.name not in ("Page", "Learning Outcome", "Uncategorized"):
                self.problem(
                    path,
                    block.line,
                    ctx,
                    f"Unknown section `{block.name}` "
                    "(expected `# Page:`, `# Learning Outcome:` or `# Uncategorized:`)",
                )
                continue
            if block.name == "Page":
                title = self.title(path, block, ctx, wanted=True)
                self.check_fields(path, block, {"id"}, ctx)
                page_id = self.required(path, block, "id", ctx)
                if page_id:
                    self.claim_id(path, page_id.line, ctx, page_id.value)
                segments = self.segments(
                    path, block, ctx, resource=None, dialect=2, resource_path=None
                )
                sections.append(
                    Section(
                        "page",
                        title,
                        page_id.value if page_id else "",
                        None,
                        False,
                        tuple(segments),
                    )
                )
            elif block.name == "Learning Outcome":
                self.title(path, block, ctx, wanted=False)
                self.check_fields(path, block, {"source", "optional"}, ctx)
                self.no_children(path, block, ctx)
                optional = self.boolean(path, block, "optional", ctx, False)
                src = self.required(path, block, "source", ctx)
                target = self.link(path, src, ctx, "Learning Outcomes") if src else None
                if target is None:
                    continue
                outcome = self.outcomes.get(target)
                if outcome is None:
                    self.problem(
                        path,
                        src.line if src else block.line,
                        ctx,
                        f"The learning outcome {target} is invalid (see its own problems)",
                    )
                    continue
                for lens_path, lens_optional in outcome.lenses:
                    section = self.lens_section(
                        path,
                        src.line if src else block.line,
                        ctx,
                        lens_path,
                        outcome.id,
                        optional or lens_optional,
                    )
                    if section:
                        sections.append(section)
            else:
                self.title(path, block, ctx, wanted=False)
                self.check_fields(path, block, set(), ctx)
                for child in block.children:
                    cctx = f"{ctx} > {child.label}"
                    if child.name != "Lens":
                        self.problem(
                            path,
                            child.line,
                            cctx,
                            f"Unknown segment `{child.name}` (expected `## Lens:`)",
                        )
                        continue
                    self.check_fields(path, child, {"source", "optional"}, cctx)
                    optional = self.boolean(path, child, "optional", cctx, False)
                    src = self.required(path, child, "source", cctx)
                    target = self.link(path, src, cctx, "Lenses") if src else None
                    if target:
                        section = self.lens_section(
                            path, src.line if src else child.line, cctx, target, None, optional
                        )
                        if section:
                            sections.append(section)
        return sections

    def lens_section(
        self, path: str, line: int, ctx: str, lens_path: str, outcome_id: str | None, optional: bool
    ) -> Section | None:
        lens = self.lenses.get(lens_path)
        if lens is None:
            self.problem(path, line, ctx, f"The lens {lens_path} is invalid (see its own problems)")
            return None
        return Section(
            lens.kind,
            lens.title,
            lens.id,
            outcome_id,
            optional,
            lens.segments,
            lens.article,
            lens.video,
        )

    def no_children(self, path: str, block: Block, ctx: str) -> None:
        for child in block.children:
            self.problem(
                path, child.line, f"{ctx} > {child.label}", f"`{block.name}` takes no segments"
            )

    def v1_sections(self, path: str, doc: Document, slug: str) -> list[Section]:
        sections: list[Section] = []
        for n, block in enumerate(doc.blocks, start=1):
            ctx = block.label
            title = self.title(path, block, ctx, wanted=True)
            key = f"v1:{slug}:{n}"
            if block.level != 1:
                self.problem(
                    path,
                    block.line,
                    ctx,
                    "A v1 module's sections are top-level "
                    "(`# Video:`, `# Article:`, `# Text:`, `# Chat:`)",
                )
                continue
            if block.name in ("Video", "Article"):
                kind: Literal["article", "video"] = "video" if block.name == "Video" else "article"
                self.check_fields(path, block, {"source", "optional"}, ctx)
                optional = self.boolean(path, block, "optional", ctx, False)
                src = self.required(path, block, "source", ctx)
                folder = "articles" if kind == "article" else "video_transcripts"
                target = self.link(path, src, ctx, folder) if src else None
                if target and not (target in self.articles or target in self.transcripts):
                    self.problem(
                        path,
                        src.line if src else block.line,
                        ctx,
                        f"The linked file {target} is invalid (see its own problems)",
                    )
                segments = self.segments(
                    path, block, ctx, resource=kind, dialect=1, resource_path=target
                )
                sections.append(
                    Section(
                        kind,
                        title,
                        key,
                        None,
                        optional,
                        tuple(segments),
                        self.articles.get(target or ""),
                        self.transcripts.get(target or ""),
                    )
                )
            elif block.name == "Text":
                self.check_fields(path, block, {"content"}, ctx)
                self.no_children(path, block, ctx)
                f = self.required(path, block, "content", ctx)
                sections.append(
                    Section("text", title, key, None, False, (TextSegment(f.value if f else ""),))
                )
            else:
                self.no_children(path, block, ctx)
                chat = self.chat(path, block, ctx, 1, False)
                sections.append(Section("chat", title, key, None, chat.optional, (chat,)))
        return sections

    # -- courses --------------------------------------------------------------------

    def load_course(self, path: str) -> None:
        doc = parse_document(path, self.files[path])
        self.out.problems.setdefault(path, []).extend(doc.problems)
        fm = self.frontmatter(doc, ["slug", "title"])
        if fm.get("id"):
            self.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
        self.check_fields(path, doc.preamble, set(), "")
        units: list[Unit] = []
        current: list[CourseModule] = []
        meetings_seen: list[int] = []
        for block in doc.blocks:
            ctx = block.label
            if block.name in ("Module", "Lesson"):
                self.check_fields(path, block, {"optional"}, ctx)
                self.no_children(path, block, ctx)
                optional = self.boolean(path, block, "optional", ctx, False)
                target_text = find_link(block.title or "")
                if target_text is None:
                    self.problem(
                        path,
                        block.line,
                        ctx,
                        "A module line needs a link: `# Module: [[../modules/<file>]]`",
                    )
                    continue
                fake = Field("module", block.title or "", block.line, True)
                target = self.link(path, fake, ctx, "modules")
                if target:
                    current.append(CourseModule(target, optional))
            elif block.name == "Meeting":
                self.check_fields(path, block, set(), ctx)
                number = (block.title or "").strip()
                if not number.isdigit() or int(number) < 1:
                    self.problem(
                        path,
                        block.line,
                        ctx,
                        f"A meeting line needs a number: `# Meeting: 1`, not {block.title!r}",
                    )
                    continue
                n = int(number)
                if n in meetings_seen:
                    self.problem(path, block.line, ctx, f"Meeting {n} appears twice")
                meetings_seen.append(n)
                units.append(Unit(len(units) + 1, n, tuple(current)))
                current = []
            else:
                self.problem(
                    path,
                    block.line,
                    ctx,
                    "A course line must be a module link (`# Module: [[...]]`) "
                    "or a meeting (`# Meeting: <n>`)",
                )
        if current:
            units.append(Unit(len(units) + 1, None, tuple(current)))
        if self.ok(path):
            self.out.courses[fm["slug"]] = Course(
                path, fm.get("id"), fm["slug"], fm["title"], tuple(units)
            )

    # -- all ------------------------------------------------------------------------

    def run(self) -> ContentSet:
        kinds: dict[str, list[str]] = {}
        for path in sorted(self.files):
            kind = file_kind(path)
            if kind is not None:
                kinds.setdefault(kind, []).append(path)
        self.existing = frozenset(p for p in self.files if not is_draft(p))
        order = ["article", "transcript", "lens", "outcome", "module", "course"]
        loaders = {
            "article": self.load_article,
            "transcript": self.load_transcript,
            "lens": self.load_lens,
            "outcome": self.load_outcome,
            "module": self.load_module,
            "course": self.load_course,
        }
        for kind in order:
            for path in kinds.get(kind, []):
                self.out.problems.setdefault(path, [])
                try:
                    loaders[kind](path)
                except Exception as exc:  # a parser bug must not hide the other files
                    self.problem(path, 1, "", f"Could not be read ({type(exc).__name__}: {exc})")
        for path in kinds.get("timestamps", []):
            transcript = path[: -len(".timestamps.json")] + ".md"
            if transcript not in self.files:
                self.load_timestamps(path)
        # A course that uses an invalid module shows the rest; the module's problems
        # are on the module's own file.
        self.out.checked = sum(len(v) for v in kinds.values())
        return self.out


def load_content(files: Mapping[str, str]) -> ContentSet:
    """Parse and validate a whole repository given as {path: text}."""
    return _Loader(files).run()


def _walk(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for b in blocks:
        out.append(b)
        out.extend(_walk(b.children))
    return out


def _body(text: str) -> str:
    """The text after the frontmatter."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return "\n".join(lines[i + 1 :]).strip()
    return text.strip()


def _anchor_message(
    name: str, anchor: str, count: int, article: str, after_from: bool = False
) -> str:
    where = f"in {article}" + (" after from::" if after_from else "")
    if count == 0:
        return f"{name}:: anchor {anchor!r} not found {where}"
    return f"{name}:: anchor {anchor!r} occurs {count} times {where}; it must occur exactly once"

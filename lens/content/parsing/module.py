"""Reads a module (`modules/*.md`) into its sections.

A v2 module has `# Page:`, `# Learning Outcome:` and `# Uncategorized:` sections; the
last two expand into one section per lens. A v1 module (only `# Video:`, `# Article:`,
`# Text:` and `# Chat:` at the top) is the older format, still served.

A section that links a file that is missing or cannot be served is left out, and the
module is served without it: the module's `notes` say what was left out (for admins),
and a warning says it to the author.
"""

from __future__ import annotations

from typing import Literal

from lens.content.parsed import Module, Section, TextSegment
from lens.content.parsing.reader import LensDef, Reader
from lens.content.parsing.segments import read_chat, read_segments, read_text
from lens.content.syntax import Block, Document, parse_document

V1_SECTIONS = {"Video", "Article", "Text", "Chat"}
KNOWN_KEYS = {
    "id",
    "contentId",
    "slug",
    "title",
    "tldr",
    "summary_for_tutor",
    "slug-aliases",
    "tags",
    "discussion",
    "author",
    "description",
}


class _Notes:
    """What this module leaves out, for the module's `notes` and the author's warnings."""

    def __init__(self, reader: Reader, path: str) -> None:
        self.reader, self.path = reader, path
        self.items: list[str] = []

    def left_out(self, line: int, ctx: str, why: str, *, rule: str) -> None:
        self.reader.warn(self.path, line, ctx, f"{why}, so this section is left out", rule=rule)
        self.items.append(f"{ctx} (line {line}): {why}")

    def linked_invalid(self, line: int, ctx: str, target: str) -> None:
        errors = self.reader.out.errors(target)
        why = f"{target} cannot be served" + (f": {errors[0].message}" if errors else "")
        self.left_out(line, ctx, why, rule="link.invalid")

    def link_failed(self, line: int, ctx: str) -> None:
        # reader.link has warned the author already; the admins' note says the outcome.
        self.items.append(f"{ctx} (line {line}): its link leads to no file it can use")


def load_module(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    names = {b.name for b in doc.blocks}
    dialect: Literal[1, 2] = 1 if names and names <= V1_SECTIONS else 2
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["slug", "title"], KNOWN_KEYS)
    slug = reader.slug(doc)
    if slug:
        reader.module_slug_claims[path] = slug
        reader.module_slug_lines[path] = doc.frontmatter_lines.get("slug", 1)
        reader.module_alias_lines[path] = doc.frontmatter_lines.get("slug-aliases", 1)
    # `contentId` is the newer format's name for a v2 module's id. A v1 module's progress
    # has always been kept by `id` or its slug, so there it stays as it was.
    content_id = fm.get("contentId") if dialect == 2 else None
    module_id = (fm.get("id") or content_id or "").strip() or None
    if module_id:
        key = "id" if fm.get("id") else "contentId"
        reader.claim_id(path, doc.frontmatter_lines.get(key, 1), "frontmatter", module_id)
    reader.check_fields(path, doc.preamble, set(), "")
    if not doc.blocks:
        reader.warn(
            path,
            1,
            "",
            "The module has no sections (`# Page:`, `# Learning Outcome:`, ...); it is "
            "served empty",
            rule="module.no-sections",
        )
    notes = _Notes(reader, path)
    sections = (
        _v2_sections(reader, path, doc, slug, notes)
        if dialect == 2
        else _v1_sections(reader, path, doc, slug, notes)
    )
    if reader.ok(path):
        reader.out.modules[path] = Module(
            path,
            module_id,
            slug,
            fm["title"].strip(),
            dialect,
            tuple(sections),
            fm.get("discussion") or None,
            tldr=fm.get("tldr") or None,
            summary_for_tutor=fm.get("summary_for_tutor") or None,
            slug_aliases=tuple(a.strip() for a in doc.items("slug-aliases") if a.strip()),
            tags=tuple(doc.items("tags")),
            notes=tuple(notes.items),
        )


def _v2_sections(
    reader: Reader, path: str, doc: Document, slug: str, notes: _Notes
) -> list[Section]:
    sections: list[Section] = []
    pages = 0
    for block in doc.blocks:
        ctx = block.label
        if block.level != 1 or block.name not in ("Page", "Learning Outcome", "Uncategorized"):
            reader.problem(
                path,
                block.line,
                ctx,
                f"Unknown section `{block.name}` "
                "(expected `# Page:`, `# Learning Outcome:` or `# Uncategorized:`)",
                rule="section.unknown",
            )
            continue
        if block.name == "Page":
            pages += 1
            title = reader.title(path, block, ctx, wanted=True) or f"Page {pages}"
            reader.check_fields(path, block, {"id"}, ctx)
            page_id = block.get("id")
            content_id = page_id.value.strip() if page_id and page_id.value.strip() else ""
            if content_id:
                reader.claim_id(path, page_id.line if page_id else block.line, ctx, content_id)
            else:
                # Progress is kept per page id; without one it is kept by the page's place,
                # which moves when pages are added before it.
                content_id = f"page:{slug}:{pages}"
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    "The page has no `id::`, so progress on it is kept by its place in the "
                    "module; give it a UUID",
                    rule="page.no-id",
                )
            segments = read_segments(
                reader, path, block, ctx, resource=None, dialect=2, resource_path=None
            )
            sections.append(Section("page", title, content_id, None, False, tuple(segments)))
        elif block.name == "Learning Outcome":
            sections += _outcome_sections(reader, path, block, notes)
        else:
            reader.title(path, block, ctx, wanted=False)
            reader.check_fields(path, block, set(), ctx)
            for child in block.children:
                cctx = f"{ctx} > {child.label}"
                if child.name != "Lens":
                    reader.problem(
                        path,
                        child.line,
                        cctx,
                        f"Unknown segment `{child.name}` (expected `## Lens:`)",
                        rule="segment.unknown",
                    )
                    continue
                reader.check_fields(path, child, {"source", "optional"}, cctx)
                optional = reader.boolean(path, child, "optional", cctx, False)
                section = _linked_lens(reader, path, child, cctx, notes, None, optional)
                if section:
                    sections.append(section)
    return sections


def _outcome_sections(reader: Reader, path: str, block: Block, notes: _Notes) -> list[Section]:
    """`# Learning Outcome:` (its title, if any, is only a label) expands to one section per
    lens of the learning outcome it links."""
    ctx = block.label
    reader.check_fields(path, block, {"source", "optional"}, ctx)
    reader.no_children(path, block, ctx)
    optional = reader.boolean(path, block, "optional", ctx, False)
    src = block.get("source")
    if src is None or not src.value.strip():
        notes.left_out(block.line, ctx, "The section has no `source::` link", rule="link.none")
        return []
    target = reader.link(path, src, ctx, "Learning Outcomes")
    if target is None:
        notes.link_failed(src.line, ctx)
        return []
    outcome = reader.outcomes.get(target)
    if outcome is None:
        notes.linked_invalid(src.line, ctx, target)
        return []
    sections = []
    for lens_path, lens_optional, _ in outcome.lenses:
        lens = reader.lenses.get(lens_path)
        if lens is None:
            # The outcome's own file says why; the module names what it lost.
            notes.linked_invalid(src.line, f"{ctx} > {lens_path}", lens_path)
            continue
        sections.append(_lens_section(lens, outcome.id, optional or lens_optional))
    return sections


def _linked_lens(
    reader: Reader,
    path: str,
    block: Block,
    ctx: str,
    notes: _Notes,
    outcome_id: str | None,
    optional: bool,
) -> Section | None:
    src = block.get("source")
    if src is None or not src.value.strip():
        notes.left_out(block.line, ctx, "The section has no `source::` link", rule="link.none")
        return None
    target = reader.link(path, src, ctx, "Lenses")
    if target is None:
        notes.link_failed(src.line, ctx)
        return None
    lens = reader.lenses.get(target)
    if lens is None:
        notes.linked_invalid(src.line, ctx, target)
        return None
    return _lens_section(lens, outcome_id, optional)


def _lens_section(lens: LensDef, outcome_id: str | None, optional: bool) -> Section:
    return Section(
        lens.kind,
        lens.title,
        lens.id,
        outcome_id,
        optional,
        lens.segments,
        lens.article,
        lens.video,
        tldr=lens.tldr,
        summary_for_tutor=lens.summary_for_tutor,
        source_path=lens.path,
    )


def _v1_sections(
    reader: Reader, path: str, doc: Document, slug: str, notes: _Notes
) -> list[Section]:
    sections: list[Section] = []
    for n, block in enumerate(doc.blocks, start=1):
        ctx = block.label
        # v1 sections have no ids; progress is keyed by the section's place in the module.
        key = f"v1:{slug}:{n}"
        if block.level != 1:
            reader.problem(
                path,
                block.line,
                ctx,
                "A v1 module's sections are top-level "
                "(`# Video:`, `# Article:`, `# Text:`, `# Chat:`)",
                rule="section.level",
            )
            continue
        # `# Text` may go without a title; the others name the section in the contents.
        title = (
            (block.title or "").strip()
            if block.name == "Text"
            else reader.title(path, block, ctx, wanted=True)
        )
        if block.name in ("Video", "Article"):
            kind: Literal["article", "video"] = "video" if block.name == "Video" else "article"
            reader.check_fields(path, block, {"source", "optional"}, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            src = block.get("source")
            folder = "articles" if kind == "article" else "video_transcripts"
            if src is None or not src.value.strip():
                notes.left_out(
                    block.line, ctx, "The section has no `source::` link", rule="link.none"
                )
                continue
            target = reader.link(path, src, ctx, folder)
            if target is None:
                notes.link_failed(src.line, ctx)
                continue
            if not (target in reader.articles or target in reader.transcripts):
                notes.linked_invalid(src.line, ctx, target)
                continue
            segments = read_segments(
                reader, path, block, ctx, resource=kind, dialect=1, resource_path=target
            )
            sections.append(
                Section(
                    kind,
                    title or block.name,
                    key,
                    None,
                    optional,
                    tuple(segments),
                    reader.articles.get(target),
                    reader.transcripts.get(target),
                )
            )
        elif block.name == "Text":
            reader.no_children(path, block, ctx)
            text = read_text(reader, path, block, ctx, {"content"})
            if text is not None:
                sections.append(Section("text", title, key, None, False, (TextSegment(text),)))
        else:
            reader.no_children(path, block, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            chat = read_chat(reader, path, block, ctx, 1, optional)
            sections.append(Section("chat", title or "Chat", key, None, optional, (chat,)))
    return sections

"""Reads a module (`modules/*.md`) into its sections.

A v2 module has `# Page:`, `# Learning Outcome:` and `# Uncategorized:` sections; the
last two expand into one section per lens. A v1 module (only `# Video:`, `# Article:`,
`# Text:` and `# Chat:` at the top) is the older format, still served.
"""

from __future__ import annotations

from typing import Literal

from lens.content.parsed import Module, Section, TextSegment
from lens.content.parsing.reader import Reader
from lens.content.parsing.segments import read_chat, read_segments
from lens.content.syntax import Document, parse_document


def load_module(reader: Reader, path: str) -> None:
    text = reader.files[path]
    doc = parse_document(path, text)
    names = {b.name for b in doc.blocks}
    dialect: Literal[1, 2] = 1 if names and names <= {"Video", "Article", "Text", "Chat"} else 2
    if dialect == 1:
        doc = parse_document(path, text, critic=False)  # v1 predates critic markup
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["id", "slug", "title"] if dialect == 2 else ["slug", "title"])
    if dialect == 2 and fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    if not doc.blocks:
        reader.problem(
            path,
            1,
            "",
            "A module needs at least one section (`# Page:`, `# Learning Outcome:`, ...)",
        )
    sections = (
        _v2_sections(reader, path, doc)
        if dialect == 2
        else _v1_sections(reader, path, doc, fm.get("slug", ""))
    )
    if reader.ok(path):
        reader.out.modules[path] = Module(
            path,
            fm.get("id"),
            fm["slug"],
            fm["title"],
            dialect,
            tuple(sections),
            fm.get("discussion") or None,
        )


def _v2_sections(reader: Reader, path: str, doc: Document) -> list[Section]:
    sections: list[Section] = []
    for block in doc.blocks:
        ctx = block.label
        if block.level != 1 or block.name not in ("Page", "Learning Outcome", "Uncategorized"):
            reader.problem(
                path,
                block.line,
                ctx,
                f"Unknown section `{block.name}` "
                "(expected `# Page:`, `# Learning Outcome:` or `# Uncategorized:`)",
            )
            continue
        if block.name == "Page":
            title = reader.title(path, block, ctx, wanted=True)
            reader.check_fields(path, block, {"id"}, ctx)
            page_id = reader.required(path, block, "id", ctx)
            if page_id:
                reader.claim_id(path, page_id.line, ctx, page_id.value)
            segments = read_segments(
                reader, path, block, ctx, resource=None, dialect=2, resource_path=None
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
            reader.title(path, block, ctx, wanted=False)
            reader.check_fields(path, block, {"source", "optional"}, ctx)
            reader.no_children(path, block, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            src = reader.required(path, block, "source", ctx)
            target = reader.link(path, src, ctx, "Learning Outcomes") if src else None
            if target is None:
                continue
            outcome = reader.outcomes.get(target)
            if outcome is None:
                reader.problem(
                    path,
                    src.line if src else block.line,
                    ctx,
                    f"The learning outcome {target} is invalid (see its own problems)",
                )
                continue
            for lens_path, lens_optional in outcome.lenses:
                section = _lens_section(
                    reader,
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
                    )
                    continue
                reader.check_fields(path, child, {"source", "optional"}, cctx)
                optional = reader.boolean(path, child, "optional", cctx, False)
                src = reader.required(path, child, "source", cctx)
                target = reader.link(path, src, cctx, "Lenses") if src else None
                if target:
                    section = _lens_section(
                        reader, path, src.line if src else child.line, cctx, target, None, optional
                    )
                    if section:
                        sections.append(section)
    return sections


def _lens_section(
    reader: Reader,
    path: str,
    line: int,
    ctx: str,
    lens_path: str,
    outcome_id: str | None,
    optional: bool,
) -> Section | None:
    lens = reader.lenses.get(lens_path)
    if lens is None:
        reader.problem(path, line, ctx, f"The lens {lens_path} is invalid (see its own problems)")
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


def _v1_sections(reader: Reader, path: str, doc: Document, slug: str) -> list[Section]:
    sections: list[Section] = []
    for n, block in enumerate(doc.blocks, start=1):
        ctx = block.label
        title = reader.title(path, block, ctx, wanted=True)
        # v1 sections have no ids; progress is keyed by the section's place in the module.
        key = f"v1:{slug}:{n}"
        if block.level != 1:
            reader.problem(
                path,
                block.line,
                ctx,
                "A v1 module's sections are top-level "
                "(`# Video:`, `# Article:`, `# Text:`, `# Chat:`)",
            )
            continue
        if block.name in ("Video", "Article"):
            kind: Literal["article", "video"] = "video" if block.name == "Video" else "article"
            reader.check_fields(path, block, {"source", "optional"}, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            src = reader.required(path, block, "source", ctx)
            folder = "articles" if kind == "article" else "video_transcripts"
            target = reader.link(path, src, ctx, folder) if src else None
            if target and not (target in reader.articles or target in reader.transcripts):
                reader.problem(
                    path,
                    src.line if src else block.line,
                    ctx,
                    f"The linked file {target} is invalid (see its own problems)",
                )
            segments = read_segments(
                reader, path, block, ctx, resource=kind, dialect=1, resource_path=target
            )
            sections.append(
                Section(
                    kind,
                    title,
                    key,
                    None,
                    optional,
                    tuple(segments),
                    reader.articles.get(target or ""),
                    reader.transcripts.get(target or ""),
                )
            )
        elif block.name == "Text":
            reader.check_fields(path, block, {"content"}, ctx)
            reader.no_children(path, block, ctx)
            f = reader.required(path, block, "content", ctx)
            sections.append(
                Section("text", title, key, None, False, (TextSegment(f.value if f else ""),))
            )
        else:
            reader.no_children(path, block, ctx)
            chat = read_chat(reader, path, block, ctx, 1, False)
            sections.append(Section("chat", title, key, None, chat.optional, (chat,)))
    return sections

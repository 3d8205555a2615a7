"""Reads a lens (`Lenses/*.md`): one `### Article:` or `### Video:` resource linking an
article or transcript, with the Text, Chat and excerpt segments that present it."""

from __future__ import annotations

from typing import Literal

from lens.content.parsed import Section
from lens.content.parsing.reader import LensDef, Reader
from lens.content.parsing.segments import read_segments
from lens.content.syntax import Block, parse_document

KNOWN_KEYS = {"id", "tldr", "summary_for_tutor", "tags", "description", "author"}


def load_lens(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["id"], KNOWN_KEYS | {"title"})
    if "title" in doc.frontmatter:
        reader.warn(
            path,
            doc.frontmatter_lines["title"],
            "frontmatter",
            "A lens takes no `title` field; the title comes from the `### Article:` or "
            "`### Video:` header (the field is ignored)",
            rule="lens.title-field",
        )
    if fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    _adopt_siblings(doc.blocks)
    resources = [b for b in _walk(doc.blocks) if b.name in ("Article", "Video")]
    for b in doc.blocks:
        if b.name in ("Article", "Video"):
            continue
        if b.name in ("Text", "Chat", "Article-excerpt", "Video-excerpt"):
            reader.warn(
                path,
                b.line,
                b.label,
                "A segment before the lens's `### Article:` or `### Video:` header belongs "
                "to nothing; it is left out",
                rule="segment.outside",
            )
        else:
            reader.problem(
                path,
                b.line,
                b.label,
                f"Unknown section `{b.name}` "
                "(a lens has one `### Article:` or `### Video:` section)",
                rule="section.unknown",
            )
    if len(resources) != 1:
        line = resources[1].line if len(resources) > 1 else 1
        reader.problem(
            path,
            line,
            "",
            "A lens needs exactly one `### Article:` or `### Video:` section, "
            f"found {len(resources)}",
            rule="lens.resources",
        )
        return
    resource = resources[0]
    kind: Literal["article", "video"] = "article" if resource.name == "Article" else "video"
    ctx = resource.label
    title = reader.title(path, resource, ctx, wanted=True) or resource.name
    reader.check_fields(path, resource, {"source"}, ctx)
    source = reader.required(path, resource, "source", ctx)
    folder = "articles" if kind == "article" else "video_transcripts"
    target = reader.link(path, source, ctx, folder) if source else None
    if source and target is None:
        reader.problem(
            path,
            source.line,
            ctx,
            f"The lens's {kind} is not there, so the lens cannot be shown",
            rule="lens.source",
        )
    elif target and not (target in reader.articles or target in reader.transcripts):
        reader.problem(
            path,
            source.line if source else 1,
            ctx,
            f"The linked file {target} cannot be served (see its own problems)",
            rule="link.invalid",
        )
    segments = read_segments(
        reader, path, resource, ctx, resource=kind, dialect=2, resource_path=target
    )
    named = "Article-excerpt" if kind == "article" else "Video-excerpt"
    if not any(b.name == named for b in resource.children):
        reader.problem(
            path,
            resource.line,
            ctx,
            f"{'An article' if kind == 'article' else 'A video'} lens needs at least one "
            f"`#### {named}`",
            rule="lens.no-excerpt",
        )
    if reader.ok(path) and target:
        lens = LensDef(
            path,
            fm["id"].strip(),
            kind,
            title,
            tuple(segments),
            reader.articles.get(target),
            reader.transcripts.get(target),
            tldr=fm.get("tldr") or None,
            summary_for_tutor=fm.get("summary_for_tutor") or None,
        )
        reader.lenses[path] = lens
        reader.out.lenses[path] = Section(
            kind,
            title,
            lens.id,
            None,
            False,
            lens.segments,
            lens.article,
            lens.video,
            tldr=lens.tldr,
            summary_for_tutor=lens.summary_for_tutor,
            source_path=path,
        )


def _adopt_siblings(blocks: list[Block]) -> None:
    """Segments written at the resource header's own level (`### Article:`, then
    `### Text`) belong to it, as they would one level deeper."""
    for i, block in enumerate(blocks):
        if block.name in ("Article", "Video"):
            following = blocks[i + 1 :]
            taken = []
            for sibling in following:
                if sibling.name in ("Article", "Video"):
                    break
                if sibling.name in ("Text", "Chat", "Article-excerpt", "Video-excerpt"):
                    taken.append(sibling)
            for sibling in taken:
                blocks.remove(sibling)
                block.children.append(sibling)
            return
        _adopt_siblings(block.children)


def _walk(blocks: list[Block]) -> list[Block]:
    out: list[Block] = []
    for b in blocks:
        out.append(b)
        out.extend(_walk(b.children))
    return out

"""Reads a course (`courses/*.md`): `# Module: [[...]]` lines grouped into units by the
`# Meeting: <n>` lines between them."""

from __future__ import annotations

from lens.content.parsed import Course, CourseModule, Unit
from lens.content.parsing.reader import Reader
from lens.content.syntax import Field, find_link, parse_document


def load_course(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["slug", "title"])
    if fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    units: list[Unit] = []
    current: list[CourseModule] = []
    meetings_seen: list[int] = []
    for block in doc.blocks:
        ctx = block.label
        if block.name in ("Module", "Lesson"):
            reader.check_fields(path, block, {"optional"}, ctx)
            reader.no_children(path, block, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            target_text = find_link(block.title or "")
            if target_text is None:
                reader.problem(
                    path,
                    block.line,
                    ctx,
                    "A module line needs a link: `# Module: [[../modules/<file>]]`",
                )
                continue
            # The link is in the header's title, not a field; a stand-in field lets it
            # share the link checks (and their messages) with `source::` links.
            fake = Field("module", block.title or "", block.line, True)
            target = reader.link(path, fake, ctx, "modules")
            if target:
                current.append(CourseModule(target, optional))
        elif block.name == "Meeting":
            reader.check_fields(path, block, set(), ctx)
            number = (block.title or "").strip()
            if not number.isdigit() or int(number) < 1:
                reader.problem(
                    path,
                    block.line,
                    ctx,
                    f"A meeting line needs a number: `# Meeting: 1`, not {block.title!r}",
                )
                continue
            n = int(number)
            if n in meetings_seen:
                reader.problem(path, block.line, ctx, f"Meeting {n} appears twice")
            meetings_seen.append(n)
            units.append(Unit(len(units) + 1, n, tuple(current)))
            current = []
        else:
            reader.problem(
                path,
                block.line,
                ctx,
                "A course line must be a module link (`# Module: [[...]]`) "
                "or a meeting (`# Meeting: <n>`)",
            )
    if current:
        units.append(Unit(len(units) + 1, None, tuple(current)))
    if reader.ok(path):
        reader.out.courses[fm["slug"]] = Course(
            path, fm.get("id"), fm["slug"], fm["title"], tuple(units)
        )

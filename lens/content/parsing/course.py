"""Reads a course (`courses/*.md`): `# Module: [[...]]` lines grouped into units by the
`# Meeting:` lines between them.

Every module line is kept, also one whose link leads nowhere or to a module that cannot
be served: the course overview shows it as unavailable instead of leaving it out.
A meeting's number is the one written (`# Meeting: 2`); `# Meeting: Introduction` names
a meeting and takes the number after the previous one.
"""

from __future__ import annotations

from lens.content.parsed import Course, CourseModule, Unit
from lens.content.parsing.reader import Reader
from lens.content.syntax import Field, find_link, parse_document

KNOWN_KEYS = {
    "id",
    "slug",
    "title",
    "tags",
    "description",
    "completion_meetings",
    "completion_modules",
}
MODULE_RULES = ("required", "all", "none")


def load_course(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["slug", "title"], KNOWN_KEYS)
    slug = reader.slug(doc)
    if fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    units: list[Unit] = []
    current: list[CourseModule] = []
    seen: set[int] = set()
    listed: dict[str, int] = {}
    for block in doc.blocks:
        ctx = block.label
        if block.name in ("Module", "Lesson"):
            reader.check_fields(path, block, {"optional"}, ctx)
            reader.no_children(path, block, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            written = find_link(block.title or "")
            if written is None:
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    "A module line needs a link: `# Module: [[../modules/<file>]]`; it is left out",
                    rule="link.syntax",
                )
                continue
            # The link is in the header's title, not a field; a stand-in field lets it
            # share the link checks (and their messages) with `source::` links.
            stand_in = Field("module", block.title or "", block.line, True)
            target = reader.link(path, stand_in, ctx, "modules")
            if target is not None and target in listed:
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    f"{target} is already listed at line {listed[target]}; both rows open "
                    "the first",
                    rule="course.repeated",
                )
            elif target is not None:
                listed[target] = block.line
            current.append(CourseModule(target, optional, written, block.line))
        elif block.name == "Meeting":
            reader.check_fields(path, block, set(), ctx)
            # A number counts as written; a name (or nothing) takes the next number.
            title = (block.title or "").strip()
            given = int(title) if title.isascii() and title.isdigit() else None
            number = given if given else (max(seen, default=0) + 1)
            if number in seen:
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    f"Meeting {number} appears twice; the modules above are due before both",
                    rule="meeting.number",
                )
            seen.add(number)
            name = title if given is None and title else None
            units.append(Unit(len(units) + 1, number, tuple(current), name))
            current = []
        else:
            reader.warn(
                path,
                block.line,
                ctx,
                "A course line is a module link (`# Module: [[...]]`) or a meeting "
                "(`# Meeting: <n or name>`); this one is ignored",
                rule="course.line",
            )
    if current:
        units.append(Unit(len(units) + 1, None, tuple(current)))
    meetings, modules = _completion(reader, path, doc.frontmatter_lines, fm)
    if reader.ok(path):
        # Placed in `out.courses` by slug once every course is read (duplicate slugs).
        reader.courses[path] = Course(
            path, fm.get("id"), slug, fm["title"].strip(), tuple(units), meetings, modules
        )
        reader.course_slug_lines[path] = doc.frontmatter_lines.get("slug", 1)


def _completion(
    reader: Reader, path: str, lines: dict[str, int], fm: dict[str, str]
) -> tuple[int | None, str]:
    """`completion_meetings:` (a whole number) and `completion_modules:` (required, all or
    none); a value Lens cannot read is ignored with a warning (the default rule holds)."""
    meetings: int | None = None
    written = (fm.get("completion_meetings") or "").strip()
    if written:
        if written.isascii() and written.isdigit() and int(written) <= 1000:
            meetings = int(written)
        else:
            reader.warn(
                path,
                lines.get("completion_meetings", 1),
                "frontmatter",
                f"completion_meetings is a number of meetings (like 4), not {written!r}; "
                "the default (two thirds of the meetings) applies",
                rule="completion.meetings",
            )
    modules = (fm.get("completion_modules") or "required").strip().lower()
    if modules not in MODULE_RULES:
        reader.warn(
            path,
            lines.get("completion_modules", 1),
            "frontmatter",
            f"completion_modules is one of {', '.join(MODULE_RULES)}, not {modules!r}; "
            "'required' applies",
            rule="completion.modules",
        )
        modules = "required"
    return meetings, modules

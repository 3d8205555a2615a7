"""Reads a learning outcome (`Learning Outcomes/*.md`): the `## Lens:` links a module's
`# Learning Outcome:` section expands to, and at most one `## Test:`."""

from __future__ import annotations

from lens.content.parsing.reader import OutcomeDef, Reader
from lens.content.syntax import parse_document

KNOWN_KEYS = {"id", "title", "tags", "description"}


def load_outcome(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["id"], KNOWN_KEYS)
    if fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    lenses: list[tuple[str, bool, int]] = []
    tests = 0
    for block in doc.blocks:
        ctx = block.label
        if block.name == "Test":
            tests += 1
            reader.check_fields(path, block, {"source"}, ctx)
            if tests > 1:
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    "A learning outcome has at most one `## Test:`; this one is ignored",
                    rule="outcome.tests",
                )
            src = block.get("source")
            # A test not written yet is a warning (reader.link); tests are not shown yet.
            if src and src.value.strip():
                reader.link(path, src, ctx)
        elif block.name == "Lens":
            reader.check_fields(path, block, {"source", "optional"}, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            src = block.get("source")
            if src is None or not src.value.strip():
                reader.warn(
                    path,
                    block.line,
                    ctx,
                    "The lens line has no `source::` link; it is left out",
                    rule="link.none",
                )
                continue
            target = reader.link(path, src, ctx, "Lenses")
            if target:
                lenses.append((target, optional, src.line))
        else:
            reader.problem(
                path,
                block.line,
                ctx,
                f"Unknown section `{block.name}` (expected `## Test:` or `## Lens:`)",
                rule="section.unknown",
            )
    if not any(b.name == "Lens" for b in doc.blocks):
        reader.problem(
            path, 1, "", "A learning outcome needs at least one `## Lens:`", rule="outcome.no-lens"
        )
    if reader.ok(path):
        title = (fm.get("title") or "").strip()
        reader.outcomes[path] = OutcomeDef(path, fm["id"].strip(), title, lenses)

"""Reads a learning outcome (`Learning Outcomes/*.md`): the `## Lens:` links a module's
`# Learning Outcome:` section expands to, and at most one `## Test:`."""

from __future__ import annotations

from lens.content.parsing.reader import OutcomeDef, Reader
from lens.content.syntax import parse_document


def load_outcome(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path])
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["id"])
    if fm.get("id"):
        reader.claim_id(path, doc.frontmatter_lines.get("id", 1), "frontmatter", fm["id"])
    reader.check_fields(path, doc.preamble, set(), "")
    lenses: list[tuple[str, bool]] = []
    tests = 0
    for block in doc.blocks:
        ctx = block.label
        if block.name == "Test":
            tests += 1
            reader.check_fields(path, block, {"source"}, ctx)
            if tests > 1:
                reader.problem(
                    path, block.line, ctx, "A learning outcome has at most one `## Test:`"
                )
            src = block.get("source")
            if src and src.value.strip():
                reader.link(path, src, ctx)
        elif block.name == "Lens":
            reader.check_fields(path, block, {"source", "optional"}, ctx)
            optional = reader.boolean(path, block, "optional", ctx, False)
            src = reader.required(path, block, "source", ctx)
            target = reader.link(path, src, ctx, "Lenses") if src else None
            if target:
                lenses.append((target, optional))
        else:
            reader.problem(
                path,
                block.line,
                ctx,
                f"Unknown section `{block.name}` (expected `## Test:` or `## Lens:`)",
            )
    if not lenses and not any(b.name == "Lens" for b in doc.blocks):
        reader.problem(path, 1, "", "A learning outcome needs at least one `## Lens:`")
    if reader.ok(path):
        reader.outcomes[path] = OutcomeDef(path, fm["id"], lenses)

"""Reads an article (`articles/*.md`): frontmatter with title, author and source_url, and
a prose body that lenses and v1 modules cut excerpts from."""

from __future__ import annotations

from lens.content.parsed import Article
from lens.content.parsing.reader import Reader
from lens.content.syntax import after_frontmatter, parse_document


def load_article(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path], critic=False)
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["title", "author", "source_url"])
    body = after_frontmatter(reader.files[path])
    if reader.ok(path):
        reader.articles[path] = Article(
            path, fm["title"], fm["author"], fm["source_url"], fm.get("date"), body
        )

"""Reads an article (`articles/*.md`): frontmatter with title, author and (optionally)
source_url, and a prose body that lenses and v1 modules cut excerpts from."""

from __future__ import annotations

from lens.content.parsed import Article
from lens.content.parsing.reader import Reader, resolve_images
from lens.content.syntax import after_frontmatter, body_line, parse_document

KNOWN_KEYS = {"title", "author", "source_url", "date", "tags", "description", "published"}


def load_article(reader: Reader, path: str) -> None:
    text = reader.files[path]
    doc = parse_document(path, text, body=False)
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["title"], KNOWN_KEYS)
    authors = [a.strip() for a in doc.items("author") if a.strip()]
    if doc.has_frontmatter and not authors:
        reader.warn(
            path,
            doc.frontmatter_lines.get("author", 1),
            "frontmatter",
            "No `author`; the article is shown without one",
            rule="article.author",
        )
    source_url = (fm.get("source_url") or "").strip() or None
    if source_url and not source_url.startswith(("http://", "https://")):
        reader.warn(
            path,
            doc.frontmatter_lines.get("source_url", 1),
            "frontmatter",
            f"`source_url` must be an http(s) URL, not {source_url!r}; no link is shown",
            rule="article.source-url",
        )
        source_url = None
    body = after_frontmatter(text)
    # Checked here, once (warnings, and the images the snapshot keeps); each excerpt
    # points its images at the repository's copy when it is cut, so anchors match the
    # article as written.
    resolve_images(reader, path, body_line(text), "", body)
    if reader.ok(path):
        reader.articles[path] = Article(
            path, fm["title"].strip(), ", ".join(authors), source_url, fm.get("date"), body
        )

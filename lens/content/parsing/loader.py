"""Reads a whole content repository: picks each file's kind by its top folder and loads
the kinds in dependency order, so one broken file never stops the others from loading."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from lens.content.parsed import ContentSet
from lens.content.parsing.article import load_article
from lens.content.parsing.course import load_course
from lens.content.parsing.learning_outcome import load_outcome
from lens.content.parsing.lens import load_lens
from lens.content.parsing.module import load_module
from lens.content.parsing.reader import SLUG, Reader
from lens.content.parsing.transcript import load_timestamps, load_transcript
from lens.content.syntax import Links, clean_source, is_draft, link_problems, preferred

FOLDERS = {
    "courses": "course",
    "modules": "module",
    "Learning Outcomes": "outcome",
    "Lenses": "lens",
    "articles": "article",
    "video_transcripts": "transcript",
}

# A kind only looks up kinds loaded before it: lenses use articles and transcripts,
# modules use learning outcomes and lenses.
_LOADERS: dict[str, Callable[[Reader, str], None]] = {
    "article": load_article,
    "transcript": load_transcript,
    "lens": load_lens,
    "outcome": load_outcome,
    "module": load_module,
    "course": load_course,
}


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


def load_content(files: Mapping[str, str], assets: Collection[str] = ()) -> ContentSet:
    """Parse and validate a whole repository given as {path: text}.

    `assets` are the paths of the repository's images (their bytes are not needed here):
    an embed `![[x.png]]` that names one is served, and listed in `assets_used`.
    """
    kinds: dict[str, list[str]] = {}
    for path in sorted(files):
        kind = file_kind(path)
        if kind is not None:
            kinds.setdefault(kind, []).append(path)
    # Authors' notes to themselves (comments, suggested changes) never reach a reader.
    cleaned = {p: clean_source(t) if p.endswith(".md") else t for p, t in files.items()}
    reader = Reader(cleaned)
    reader.existing = frozenset(p for p in files if not is_draft(p))
    reader.links = Links(p for p in reader.existing if p.endswith(".md"))
    reader.assets = frozenset(a for a in assets if not is_draft(a))
    reader.asset_links = Links(reader.assets)
    for kind, load in _LOADERS.items():
        for path in kinds.get(kind, []):
            reader.out.problems.setdefault(path, []).extend(
                link_problems(path, cleaned[path]) if path.endswith(".md") else ()
            )
            try:
                load(reader, path)
            except Exception as exc:  # a parser bug must not hide the other files
                reader.problem(
                    path,
                    1,
                    "",
                    f"Could not be read ({type(exc).__name__}: {exc})",
                    rule="file.unreadable",
                )
    # Timings are read with their transcript; these have none, but are still checked.
    for path in kinds.get("timestamps", []):
        transcript = path[: -len(".timestamps.json")] + ".md"
        if transcript not in files:
            load_timestamps(reader, path)
    _settle_ids(reader)
    _settle_module_slugs(reader)
    _settle_courses(reader)
    reader.out.checked = sum(len(v) for v in kinds.values())
    return reader.out


def _settle_ids(reader: Reader) -> None:
    """Two files (or two pages) with one id, typically an editor's copy "Name 1.md" of
    "Name.md": both are served and links still name files; a warning names them all, and
    a lookup by id (progress, /lens/<id>) takes the preferred file."""
    for key, claims in reader.ids.items():
        paths = list(dict.fromkeys(p for p, _ in claims))
        chosen = preferred(paths)
        reader.out.ids[key] = chosen
        lenses = [p for p in paths if p in reader.out.lenses]
        if lenses:
            # /lens/<id> serves a lens: of the files with this id, a servable lens.
            reader.out.lens_ids[key] = preferred(lenses)
        if len(claims) < 2:
            continue
        for path, line in claims:
            others = ", ".join(f"{p}:{n}" for p, n in claims if (p, n) != (path, line))
            reader.warn(
                path,
                line,
                "",
                f"Duplicate id {key}, also at {others}: links name files, so they are "
                f"not affected; where Lens looks the id up (progress, /lens/<id>) it uses "
                f"{chosen}",
                rule="id.duplicate",
            )


def _settle_module_slugs(reader: Reader) -> None:
    """One module per slug: of several, the preferred servable one keeps it, and each of
    the others is an error naming them (it would be unreachable)."""
    claims: dict[str, list[str]] = {}
    for path in sorted(reader.module_slug_claims):
        claims.setdefault(reader.module_slug_claims[path], []).append(path)
    out = reader.out
    for slug, paths in claims.items():
        servable = [p for p in paths if p in out.modules]
        chosen = preferred(servable) if servable else None
        for path in paths:
            if path == chosen or len(paths) < 2:
                continue
            reader.problem(
                path,
                reader.module_slug_lines.get(path, 1),
                "frontmatter",
                f"slug {slug!r} is also the slug of "
                f"{', '.join(p for p in paths if p != path)}; "
                + (f"{chosen} is served under it" if chosen else "give each module its own"),
                rule="slug.duplicate",
            )
            out.modules.pop(path, None)
        if chosen is not None:
            out.module_slugs[slug] = chosen
    for path in sorted(out.modules):
        module = out.modules[path]
        line = reader.module_alias_lines.get(path, 1)
        for alias in module.slug_aliases:
            why = None
            if alias == module.slug:
                why = "is the module's own slug"
            elif alias in out.module_slugs:
                why = f"is the slug of {out.module_slugs[alias]}"
            elif alias in out.slug_aliases:
                why = f"is already an earlier slug of {out.module_slugs[out.slug_aliases[alias]]}"
            elif not SLUG.match(alias):
                why = "is not lowercase letters, digits and single hyphens"
            if why is not None:
                reader.warn(
                    path,
                    line,
                    "frontmatter",
                    f"slug-alias {alias!r} {why}; it is ignored",
                    rule="slug.alias",
                )
                continue
            out.slug_aliases[alias] = module.slug


def _settle_courses(reader: Reader) -> None:
    by_slug: dict[str, list[str]] = {}
    for path, course in sorted(reader.courses.items()):
        by_slug.setdefault(course.slug, []).append(path)
    for slug, paths in by_slug.items():
        chosen = preferred(paths)
        reader.out.courses[slug] = reader.courses[chosen]
        for path in paths:
            if path != chosen:
                reader.problem(
                    path,
                    reader.course_slug_lines.get(path, 1),
                    "frontmatter",
                    f"slug {slug!r} is also the slug of {chosen}, which is served under it",
                    rule="slug.duplicate",
                )

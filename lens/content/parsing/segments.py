"""Reads the segments under a module page, a v1 section or a lens resource.

Text and Chat segments can appear anywhere segments do; Article-excerpt only under an
article and Video-excerpt only under a video, where they cut the linked article's body
or transcript's timings.
"""

from __future__ import annotations

from lens.content.parsed import (
    ArticleExcerpt,
    ChatSegment,
    Segment,
    TextSegment,
    VideoExcerpt,
)
from lens.content.parsing.reader import CHAT_V1, CHAT_V2, Reader, resolve_images
from lens.content.syntax import Block, parse_time


def read_segments(
    reader: Reader,
    path: str,
    parent: Block,
    context: str,
    *,
    resource: str | None,
    dialect: int,
    resource_path: str | None,
) -> list[Segment]:
    """Text, Chat and excerpt segments under a section or lens resource."""
    out: list[Segment] = []
    last_end: int | None = None
    allowed = {"Text", "Chat"}
    if resource == "article":
        allowed.add("Article-excerpt")
    if resource == "video":
        allowed.add("Video-excerpt")
    for block in parent.children:
        ctx = f"{context} > {block.label}"
        if block.name not in allowed:
            misplaced = block.name in {"Text", "Chat", "Article-excerpt", "Video-excerpt"}
            reader.problem(
                path,
                block.line,
                ctx,
                f"Segment `{block.name}` is not allowed {'here' if misplaced else 'at all'} "
                f"(expected: {', '.join(sorted(allowed))})",
                rule="segment.misplaced" if misplaced else "segment.unknown",
            )
            continue
        # Segments may carry a title (`## Chat: About risk`); it is only a label.
        optional = reader.boolean(path, block, "optional", ctx, False)
        if block.name == "Text":
            text = read_text(reader, path, block, ctx, {"content", "optional"})
            if text is not None:
                out.append(TextSegment(text, optional))
        elif block.name == "Chat":
            out.append(read_chat(reader, path, block, ctx, dialect, optional))
        elif block.name == "Article-excerpt":
            reader.check_fields(path, block, {"from", "to", "optional"}, ctx)
            excerpt = _article_excerpt(reader, path, block, ctx, resource_path, last_end, optional)
            if excerpt:
                last_end = excerpt.end
                out.append(excerpt)
        else:
            reader.check_fields(path, block, {"from", "to", "optional"}, ctx)
            video = _video_excerpt(reader, path, block, ctx, resource_path, optional)
            if video:
                out.append(video)
    return out


def read_text(reader: Reader, path: str, block: Block, ctx: str, allowed: set[str]) -> str | None:
    """A Text segment's (or v1 Text section's) `content::`, images resolved. Text written
    under the header without `content::` is taken as the content (paragraphs and
    headings as written), with a warning."""
    f = block.get("content")
    if f is None and block.stray:
        first = block.stray[0][0]
        reader.warn(
            path,
            first,
            ctx,
            "Text without `content::` above it; it is read as the content",
            rule="text.no-field",
        )
        body = "\n".join(line for _, line in block.text_lines).strip()
        block.stray = []
        reader.check_fields(path, block, allowed, ctx)
        return resolve_images(reader, path, first, ctx, body)
    reader.check_fields(path, block, allowed, ctx)
    f = reader.required(path, block, "content", ctx)
    if f is None:
        return None
    return resolve_images(reader, path, f.first_line, ctx, f.value)


def read_chat(
    reader: Reader, path: str, block: Block, ctx: str, dialect: int, optional: bool
) -> ChatSegment:
    reader.check_fields(path, block, CHAT_V2 if dialect == 2 else CHAT_V1, ctx)
    f = reader.required(path, block, "instructions", ctx)
    if dialect == 2:
        hide_user = reader.boolean(path, block, "hidePreviousContentFromUser", ctx, False)
        hide_tutor = reader.boolean(path, block, "hidePreviousContentFromTutor", ctx, False)
    else:
        hide_user = not reader.boolean(path, block, "showUserPreviousContent", ctx, True)
        hide_tutor = not reader.boolean(path, block, "showTutorPreviousContent", ctx, True)
    return ChatSegment(f.value if f else "", hide_user, hide_tutor, optional)


def _article_excerpt(
    reader: Reader,
    path: str,
    block: Block,
    ctx: str,
    article_path: str | None,
    last_end: int | None,
    optional: bool,
) -> ArticleExcerpt | None:
    article = reader.articles.get(article_path or "")
    if article is None:
        return None  # the source problem is already reported
    body = article.body
    lowered = body.lower()
    start, end = 0, len(body)
    anchor_from = block.get("from")
    anchor_to = block.get("to")
    if anchor_from and anchor_from.value:
        needle = anchor_from.value.lower()
        count = lowered.count(needle)
        if count != 1:
            reader.problem(
                path,
                anchor_from.line,
                ctx,
                _anchor_message("from", anchor_from.value, count, article.path),
                rule="anchor.missing" if count == 0 else "anchor.ambiguous",
            )
            return None
        start = lowered.index(needle)
    if anchor_to and anchor_to.value:
        needle = anchor_to.value.lower()
        count = lowered.count(needle, start)
        if count != 1:
            reader.problem(
                path,
                anchor_to.line,
                ctx,
                _anchor_message("to", anchor_to.value, count, article.path, after_from=True),
                rule="anchor.missing" if count == 0 else "anchor.ambiguous",
            )
            return None
        end = lowered.index(needle, start) + len(needle)
    omitted = ""
    if last_end is not None and start > last_end:
        omitted = body[last_end:start].strip()

    def images(text: str) -> str:
        return resolve_images(reader, article.path, 1, "", text, check=False)

    return ArticleExcerpt(images(body[start:end].strip()), start, end, images(omitted), optional)


def _video_excerpt(
    reader: Reader,
    path: str,
    block: Block,
    ctx: str,
    transcript_path: str | None,
    optional: bool,
) -> VideoExcerpt | None:
    start: float = 0.0
    end: float | None = None
    bad = False
    for name in ("from", "to"):
        f = block.get(name)
        if f is None or not f.value:
            continue
        value = parse_time(f.value)
        if value is None:
            reader.problem(
                path,
                f.line,
                ctx,
                f"{name}:: must be a time like 1:10, 1:02:03 or 70, not {f.value!r}",
                rule="clip.time",
            )
            bad = True
        elif name == "from":
            start = value
        else:
            end = value
    if end is not None and end <= start:
        reader.problem(path, block.line, ctx, "to:: must be after from::", rule="clip.order")
        bad = True
    transcript = reader.transcripts.get(transcript_path or "")
    if bad or transcript is None:
        return None
    if not transcript.timings:
        reader.warn(
            path,
            block.line,
            ctx,
            f"{transcript.path} has no usable timestamps "
            f"({transcript.path[: -len('.md')]}.timestamps.json), so this clip's transcript "
            "is the whole transcript text",
            rule="clip.no-timestamps",
        )
        return VideoExcerpt(start, end, transcript.body, optional)
    last = transcript.timings[-1].start
    # Timings are the starts of words: a clip may end a little after the last one, but
    # a minute past it (or a start after it) means the times do not fit this video.
    if start > last or (end is not None and end > last + 60):
        reader.warn(
            path,
            block.line,
            ctx,
            f"The clip ({_clock(start)} to {_clock(end) if end is not None else 'the end'}) "
            f"goes past the transcript's last words at {_clock(last)} in {transcript.path}",
            rule="clip.beyond-end",
        )
    words = [
        t.text for t in transcript.timings if t.start >= start and (end is None or t.start <= end)
    ]
    return VideoExcerpt(start, end, " ".join(w.strip() for w in words if w.strip()), optional)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _anchor_message(
    name: str, anchor: str, count: int, article: str, after_from: bool = False
) -> str:
    where = f"in {article}" + (" after from::" if after_from else "")
    if count == 0:
        return f"{name}:: anchor {anchor!r} not found {where}"
    return f"{name}:: anchor {anchor!r} occurs {count} times {where}; it must occur exactly once"

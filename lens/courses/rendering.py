"""Turning parsed sections into what the module page shows (all HTML sanitised)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

from lens.content.parsed import (
    ArticleExcerpt,
    ChatSegment,
    Section,
    TextSegment,
    VideoExcerpt,
)
from lens.web.markdown import render_markdown

_HEADING = re.compile(r"<h([23])>(.*?)</h\1>", re.S)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Block:
    kind: str  # text, chat, excerpt, clip
    html: str = ""
    omitted_html: str = ""
    start: float = 0.0
    end: float | None = None
    transcript: str = ""
    segment_index: int = 0
    hide_previous: bool = False  # hidePreviousContentFromUser


@dataclass(frozen=True)
class TocEntry:
    anchor: str
    title: str
    level: int


def _anchor_headings(html: str, prefix: str, toc: list[TocEntry]) -> str:
    def replace(match: re.Match[str]) -> str:
        level, inner = int(match.group(1)), match.group(2)
        anchor = f"{prefix}-{len(toc) + 1}"
        toc.append(TocEntry(anchor, unescape(_TAG.sub("", inner)).strip(), level))
        return f'<h{level} id="{anchor}">{inner}</h{level}>'

    return _HEADING.sub(replace, html)


_H1 = re.compile(r"<(/?)h1(\b[^>]*)>")


def _below_the_title(html: str) -> str:
    """A `# Heading` an author wrote in a text is a heading of the section, not a second
    title of the page (the module's title is the page's one <h1>)."""
    return _H1.sub(r"<\1h2\2>", html) if "<h1" in html else html


def section_blocks(section: Section) -> tuple[list[Block], list[TocEntry]]:
    blocks: list[Block] = []
    toc: list[TocEntry] = []
    for index, segment in enumerate(section.segments):
        if isinstance(segment, TextSegment):
            blocks.append(Block("text", html=_below_the_title(render_markdown(segment.content))))
        elif isinstance(segment, ChatSegment):
            blocks.append(
                Block("chat", segment_index=index, hide_previous=segment.hide_previous_from_user)
            )
        elif isinstance(segment, ArticleExcerpt):
            html = _anchor_headings(render_markdown(segment.text), "excerpt", toc)
            omitted = render_markdown(segment.omitted_before) if segment.omitted_before else ""
            blocks.append(Block("excerpt", html=html, omitted_html=omitted))
        elif isinstance(segment, VideoExcerpt):
            blocks.append(
                Block(
                    "clip",
                    start=segment.start_seconds,
                    end=segment.end_seconds,
                    transcript=segment.transcript,
                )
            )
    return blocks, toc


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "end"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

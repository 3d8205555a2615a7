"""Reads a video transcript (`video_transcripts/*.md`) and its word timings
(`*.timestamps.json`), which video excerpts cut by time."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from lens.content.parsed import Timing, Transcript
from lens.content.parsing.reader import Reader
from lens.content.syntax import after_frontmatter, parse_document, parse_time

_YOUTUBE = re.compile(r"(?:[?&]v=|youtu\.be/|/embed/|/shorts/|/live/)([A-Za-z0-9_-]{6,})")
_YOUTUBE_HOSTS = {"youtube.com", "youtu.be", "youtube-nocookie.com", "m.youtube.com"}


def youtube_id(url: str) -> str | None:
    """The video id of a YouTube address (watch, youtu.be, embed, shorts, live), or None
    for anything else (the address is also shown as a link: only http(s) YouTube)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    if parts.scheme not in ("http", "https") or host not in _YOUTUBE_HOSTS:
        return None
    match = _YOUTUBE.search(url)
    return match.group(1) if match else None


KNOWN_KEYS = {"url", "title", "channel", "tags", "date", "description", "duration"}


def load_transcript(reader: Reader, path: str) -> None:
    doc = parse_document(path, reader.files[path], body=False)
    reader.out.problems.setdefault(path, []).extend(doc.problems)
    fm = reader.frontmatter(doc, ["url"], KNOWN_KEYS)
    video_id = youtube_id(fm.get("url", ""))
    if fm.get("url", "").strip() and video_id is None:
        reader.problem(
            path,
            doc.frontmatter_lines.get("url", 1),
            "frontmatter",
            f"`url` must be a YouTube video URL, not {fm['url']!r}",
            rule="transcript.url",
        )
    for key in ("title", "channel"):
        if doc.has_frontmatter and not fm.get(key, "").strip():
            reader.warn(
                path,
                doc.frontmatter_lines.get(key, 1),
                "frontmatter",
                f"No `{key}`; the video is shown without one",
                rule=f"transcript.{key}",
            )
    timings: tuple[Timing, ...] = ()
    stamps = path[: -len(".md")] + ".timestamps.json"
    if stamps in reader.files:
        timings = load_timestamps(reader, stamps)
    if reader.ok(path) and video_id:
        reader.transcripts[path] = Transcript(
            path,
            fm["url"],
            video_id,
            fm.get("title", ""),
            fm.get("channel", ""),
            after_frontmatter(reader.files[path]),
            timings,
        )


def load_timestamps(reader: Reader, path: str) -> tuple[Timing, ...]:
    reader.out.problems.setdefault(path, [])
    # The clips of a transcript whose timings cannot be read fall back to its whole text:
    # a problem here is a warning, never a transcript taken down.
    try:
        data = json.loads(reader.files[path])
    except ValueError as exc:
        reader.warn(
            path,
            getattr(exc, "lineno", 1),
            "",
            f"Not valid JSON ({exc}); the timings are not used",
            rule="timestamps.json",
        )
        return ()
    if not isinstance(data, list):
        reader.warn(
            path,
            1,
            "",
            'Expected a JSON array of {"text", "start"} entries; the timings are not used',
            rule="timestamps.json",
        )
        return ()
    timings = []
    lines: list[int] | None = None
    for n, entry in enumerate(data):
        start = parse_time(str(entry.get("start", ""))) if isinstance(entry, dict) else None
        if start is None or not isinstance(entry.get("text"), str):
            lines = lines or _entry_lines(reader.files[path])
            reader.warn(
                path,
                lines[n] if n < len(lines) else 1,
                f"entry {n}",
                'Each entry needs "text" and "start" as "M:SS.ss"; this one is skipped',
                rule="timestamps.entry",
            )
            continue
        timings.append(Timing(start, entry["text"]))
    return tuple(timings)


def _entry_lines(text: str) -> list[int]:
    """The line each element of a top-level JSON array starts on (only asked for when
    an entry is wrong, so a valid file is never scanned twice)."""
    lines: list[int] = []
    depth, line, in_string, escaped, expecting = 0, 1, False, False, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char in " \t\r\n":
            continue
        if depth == 1 and expecting and char not in ",]":
            lines.append(line)
            expecting = False
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            expecting = depth == 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 1:
            expecting = True
    return lines

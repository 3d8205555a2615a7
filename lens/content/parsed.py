"""Parsed content: what the reader, the tutor and progress need, nothing about syntax."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lens.content.problems import Problem


@dataclass(frozen=True)
class TextSegment:
    content: str
    optional: bool = False
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class ChatSegment:
    instructions: str
    hide_previous_from_user: bool = False
    hide_previous_from_tutor: bool = False
    optional: bool = False
    kind: Literal["chat"] = "chat"


@dataclass(frozen=True)
class ArticleExcerpt:
    text: str
    start: int  # character offsets in the article body
    end: int
    omitted_before: str = ""  # article text skipped since the previous excerpt
    optional: bool = False
    kind: Literal["article-excerpt"] = "article-excerpt"


@dataclass(frozen=True)
class VideoExcerpt:
    start_seconds: float
    end_seconds: float | None  # None: to the end of the video
    transcript: str
    optional: bool = False
    kind: Literal["video-excerpt"] = "video-excerpt"


Segment = TextSegment | ChatSegment | ArticleExcerpt | VideoExcerpt


@dataclass(frozen=True)
class Article:
    path: str
    title: str
    author: str
    source_url: str
    date: str | None
    body: str


@dataclass(frozen=True)
class Timing:
    start: float
    text: str


@dataclass(frozen=True)
class Transcript:
    path: str
    url: str
    video_id: str
    title: str
    channel: str
    body: str
    timings: tuple[Timing, ...]


@dataclass(frozen=True)
class Section:
    kind: Literal["page", "article", "video", "text", "chat"]
    title: str
    content_id: str  # page id or lens id: what progress is keyed by
    outcome_id: str | None
    optional: bool
    segments: tuple[Segment, ...]
    article: Article | None = None
    video: Transcript | None = None


@dataclass(frozen=True)
class Module:
    path: str
    id: str | None
    slug: str
    title: str
    dialect: Literal[1, 2]
    sections: tuple[Section, ...]
    discussion: str | None = None


@dataclass(frozen=True)
class CourseModule:
    path: str  # the module file
    optional: bool


@dataclass(frozen=True)
class Unit:
    number: int
    meeting: int | None  # the meeting that follows this unit; None after the last
    modules: tuple[CourseModule, ...]


@dataclass(frozen=True)
class Course:
    path: str
    id: str | None
    slug: str
    title: str
    units: tuple[Unit, ...]


@dataclass
class ContentSet:
    """Everything loaded from one snapshot of a content repository."""

    courses: dict[str, Course] = field(default_factory=dict)  # by slug
    modules: dict[str, Module] = field(default_factory=dict)  # by path
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # by path
    checked: int = 0  # files checked (drafts and notes excluded)

    @property
    def invalid(self) -> int:
        return sum(1 for p in self.problems.values() if p)

    @property
    def valid(self) -> int:
        return self.checked - self.invalid

    def all_problems(self) -> list[Problem]:
        return sorted(p for ps in self.problems.values() for p in ps)

    def module_by_slug(self, slug: str) -> Module | None:
        for module in self.modules.values():
            if module.slug == slug:
                return module
        return None

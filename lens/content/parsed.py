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
    author: str  # several authors joined with ", "
    source_url: str | None  # an http(s) URL, or None: no link is shown
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
    # From the lens's frontmatter: a one-line summary, and context for the tutor.
    tldr: str | None = None
    summary_for_tutor: str | None = None
    source_path: str | None = None  # the lens file a lens section comes from


@dataclass(frozen=True)
class Module:
    path: str
    id: str | None
    slug: str
    title: str
    dialect: Literal[1, 2]
    sections: tuple[Section, ...]
    discussion: str | None = None
    tldr: str | None = None
    summary_for_tutor: str | None = None
    slug_aliases: tuple[str, ...] = ()  # earlier slugs, redirected here
    tags: tuple[str, ...] = ()
    # What could not be served and was left out (a broken lens, a missing link), for
    # admins: "Uncategorized > Lens (line 19): Lenses/X.md has errors".
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CourseModule:
    path: str | None  # the module file; None when the link names no file
    optional: bool
    link: str = ""  # the link as written, to name a module that cannot be served
    line: int = 0


@dataclass(frozen=True)
class Unit:
    number: int
    meeting: int | None  # the meeting that follows this unit; None after the last
    modules: tuple[CourseModule, ...]
    meeting_name: str | None = None  # `# Meeting: Introduction`


@dataclass(frozen=True)
class Course:
    path: str
    id: str | None
    slug: str
    title: str
    units: tuple[Unit, ...]
    # What completing the course takes (a cohort can override both; see lens/completion):
    completion_meetings: int | None = None  # meetings attended; None: the default rule
    completion_modules: str = "required"  # "required", "all" or "none"


@dataclass
class ContentSet:
    """Everything loaded from one snapshot of a content repository."""

    courses: dict[str, Course] = field(default_factory=dict)  # by slug
    modules: dict[str, Module] = field(default_factory=dict)  # by path
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # by path
    checked: int = 0  # files checked (drafts and notes excluded)
    # Images the content embeds (`![[...]]`) that exist in the repository: what a
    # snapshot must keep, and the only asset paths the site serves.
    assets_used: set[str] = field(default_factory=set)
    lenses: dict[str, Section] = field(default_factory=dict)  # by path, served alone
    ids: dict[str, str] = field(default_factory=dict)  # id (lower case) -> its file
    lens_ids: dict[str, str] = field(default_factory=dict)  # id -> a servable lens file
    module_slugs: dict[str, str] = field(default_factory=dict)  # slug -> module path
    slug_aliases: dict[str, str] = field(default_factory=dict)  # earlier slug -> slug

    @property
    def invalid(self) -> int:
        """Files that cannot be served (they have an error)."""
        return sum(1 for ps in self.problems.values() if any(p.is_error for p in ps))

    @property
    def valid(self) -> int:
        return self.checked - self.invalid

    @property
    def error_count(self) -> int:
        return sum(1 for ps in self.problems.values() for p in ps if p.is_error)

    @property
    def warning_count(self) -> int:
        return sum(1 for ps in self.problems.values() for p in ps if not p.is_error)

    def all_problems(self) -> list[Problem]:
        return sorted(p for ps in self.problems.values() for p in ps)

    def errors(self, path: str) -> list[Problem]:
        return [p for p in self.problems.get(path, ()) if p.is_error]

    def module_by_slug(self, slug: str) -> Module | None:
        path = self.module_slugs.get(slug)
        return self.modules.get(path) if path is not None else None

    def lens_by_id(self, lens_id: str) -> Section | None:
        path = self.lens_ids.get(lens_id.strip().lower())
        return self.lenses.get(path) if path is not None else None

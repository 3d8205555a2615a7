"""What the tutor is told for one chat segment: pure functions, no I/O.

The system prompt is assembled from, in order:
1. the base tutor prompt (the course's own, or DEFAULT_BASE_PROMPT);
2. where the student is: course, module, section and its position;
3. what the author wrote for the tutor about the module and the lens
   (`summary_for_tutor` in their frontmatter);
4. the content earlier in the same section (text, article excerpts, clip transcripts),
   unless the segment says `hidePreviousContentFromTutor` (v1:
   `showTutorPreviousContent:: false`); never content after the chat. A v1 module's
   stand-alone `# Chat:` section has nothing before it in its own section: it gets the
   section just before it instead (what the student has just read or watched);
5. the author's instructions for this conversation.

System prompts stay on the server: nothing here is ever sent to the browser.
"""

from __future__ import annotations

from dataclasses import dataclass

from lens.content.parsed import (
    ArticleExcerpt,
    ChatSegment,
    Course,
    Module,
    Section,
    TextSegment,
    VideoExcerpt,
)

DEFAULT_BASE_PROMPT = (
    "You are a patient, encouraging tutor in an online course. Help the student think for "
    "themselves: ask questions, check their understanding, and explain when they are stuck. "
    "Keep replies short (a few sentences) unless the student asks for more. Be honest about "
    "uncertainty, and say so when a question goes beyond the course material. Reply in the "
    "language the student writes in. Use Markdown sparingly."
)
# A very long article excerpt would crowd out the conversation; keep the start.
MAX_CONTEXT_CHARS = 24_000


@dataclass(frozen=True)
class ChatTarget:
    """One chat segment, located in the course."""

    course: Course | None  # None: the module read on its own (/module/<slug>)
    module: Module
    section_index: int  # 0-based within the module
    segment_index: int  # 0-based within the section

    @property
    def section(self) -> Section:
        return self.module.sections[self.section_index]

    @property
    def chat(self) -> ChatSegment:
        segment = self.section.segments[self.segment_index]
        if not isinstance(segment, ChatSegment):
            raise ValueError("that segment is not a chat")
        return segment


def find_chat(
    course: Course | None, module: Module, section_index: int, segment_index: int
) -> ChatTarget:
    target = ChatTarget(course, module, section_index, segment_index)
    if not 0 <= section_index < len(module.sections):
        raise ValueError("no such section")
    if not 0 <= segment_index < len(target.section.segments):
        raise ValueError("no such segment")
    target.chat  # noqa: B018 (validates the kind)
    return target


def earlier_content(target: ChatTarget) -> list[str]:
    """The readable content before this chat in the same section, as labelled passages
    (for a v1 stand-alone chat section: the whole section before it)."""
    section = target.section
    segments = section.segments[: target.segment_index]
    if (
        target.module.dialect == 1
        and section.kind == "chat"
        and target.segment_index == 0
        and target.section_index > 0
    ):
        section = target.module.sections[target.section_index - 1]
        segments = section.segments
    passages: list[str] = []
    for segment in segments:
        if isinstance(segment, TextSegment) and segment.content.strip():
            passages.append(f"[Text]\n{segment.content.strip()}")
        elif isinstance(segment, ArticleExcerpt) and segment.text.strip():
            title = section.article.title if section.article else section.title
            author = f" by {section.article.author}" if section.article else ""
            passages.append(f"[Excerpt from the article {title!r}{author}]\n{segment.text.strip()}")
        elif isinstance(segment, VideoExcerpt) and segment.transcript.strip():
            title = section.video.title if section.video and section.video.title else section.title
            passages.append(
                f"[Transcript of a clip from the video {title!r}]\n{segment.transcript}"
            )
    return passages


def build_system_prompt(target: ChatTarget, *, base_prompt: str | None = None) -> str:
    section = target.section
    parts = [(base_prompt or DEFAULT_BASE_PROMPT).strip()]
    course = f"- Course: {target.course.title}\n" if target.course else ""
    parts.append(
        "Where the student is:\n"
        f"{course}"
        f"- Module: {target.module.title}\n"
        f"- Section {target.section_index + 1} of {len(target.module.sections)}: "
        f"{section.title} ({section.kind})"
    )
    notes = [
        text.strip()
        for text in (target.module.summary_for_tutor, section.summary_for_tutor)
        if text and text.strip()
    ]
    if notes:
        parts.append(
            "What the course's authors tell you about this material:\n" + "\n\n".join(notes)
        )
    if not target.chat.hide_previous_from_tutor:
        passages = earlier_content(target)
        if passages:
            material = "\n\n".join(passages)
            if len(material) > MAX_CONTEXT_CHARS:
                material = material[:MAX_CONTEXT_CHARS] + "\n[…the rest is left out]"
            parts.append(
                "What the student has just read or watched in this section:\n\n" + material
            )
    parts.append("Your instructions for this conversation:\n" + target.chat.instructions.strip())
    return "\n\n".join(parts)

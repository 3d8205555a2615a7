"""One test per prompt-assembly rule, on modules parsed from real content files."""

from __future__ import annotations

import pytest

from lens.content.parsing import load_content
from lens.tutor.prompt import DEFAULT_BASE_PROMPT, build_system_prompt, find_chat
from tests.content.test_rules import repo, sub

V2_MODULE = """---
id: 00000000-0000-4000-8000-0000000000a2
slug: m
title: Module
---
# Page: First page
id:: 00000000-0000-4000-8000-0000000000a3
## Text
content::
Only in the first page.

# Page: Second page
id:: 00000000-0000-4000-8000-0000000000a4
## Text
content::
Before the chat.
## Chat
instructions::
Ask what they noticed.
## Text
content::
After the chat.
## Chat
instructions::
Second chat.
hidePreviousContentFromTutor:: true
# Learning Outcome:
source:: [[../Learning Outcomes/LO]]
"""


def module_from(**changes: str):
    content = load_content(repo(**changes))
    assert content.all_problems() == [], content.all_problems()
    return content


def target(content, module_path: str, section: int, segment: int):
    course = content.courses["c"]
    return find_chat(course, content.modules[module_path], section, segment)


def test_only_earlier_content_of_the_same_section_is_given() -> None:
    content = module_from(**{"modules__m.md": V2_MODULE})
    prompt = build_system_prompt(target(content, "modules/m.md", 1, 1))
    assert "Before the chat." in prompt
    assert "Only in the first page." not in prompt  # another section
    assert "After the chat." not in prompt  # later in the section
    assert prompt.endswith("Your instructions for this conversation:\nAsk what they noticed.")


def test_v2_hide_previous_content_from_tutor() -> None:
    content = module_from(**{"modules__m.md": V2_MODULE})
    prompt = build_system_prompt(target(content, "modules/m.md", 1, 3))
    assert "Before the chat." not in prompt and "After the chat." not in prompt
    assert "What the student has just read" not in prompt
    assert "Second chat." in prompt


def test_v1_show_tutor_previous_content_false_hides_it() -> None:
    content = module_from()
    old = content.modules["modules/old.md"]
    # Section 3 of the v1 fixture is `# Chat: Talk` with showTutorPreviousContent:: false.
    prompt = build_system_prompt(target(content, "modules/old.md", 2, 0))
    assert old.sections[2].segments[0].hide_previous_from_tutor is True
    assert "What the student has just read" not in prompt


def test_v1_chat_after_an_excerpt_gets_the_excerpt() -> None:
    text = sub(
        repo()["modules/old.md"],
        "## Article-excerpt\nfrom:: second part\nto:: skipped.\n",
        "## Article-excerpt\nfrom:: second part\nto:: skipped.\n"
        "## Chat\ninstructions::\nDiscuss.\n",
    )
    content = module_from(**{"modules__old.md": text})
    prompt = build_system_prompt(target(content, "modules/old.md", 0, 1))
    assert "[Excerpt from the article 'A' by B]\nSecond part is skipped." in prompt


def test_v1_stand_alone_chat_section_gets_the_section_before_it() -> None:
    text = sub(repo()["modules/old.md"], "showTutorPreviousContent:: false\n", "")
    content = module_from(**{"modules__old.md": text})
    # `# Text: Note` (section 2), then `# Chat: Talk` (section 3) on its own.
    prompt = build_system_prompt(target(content, "modules/old.md", 2, 0))
    assert (
        "What the student has just read or watched in this section:\n\n[Text]\nSome text." in prompt
    )


def test_summary_for_tutor_of_the_module_and_the_lens() -> None:
    module = sub(
        repo()["modules/m.md"], "title: Module\n", "title: Module\nsummary_for_tutor: About M.\n"
    )
    lens = sub(repo()["Lenses/V.md"], "---\n###", "summary_for_tutor: About the video.\n---\n###")
    content = module_from(**{"modules__m.md": module, "Lenses__V.md": lens})
    prompt = build_system_prompt(target(content, "modules/m.md", 2, 1))
    assert (
        "What the course's authors tell you about this material:\nAbout M.\n\nAbout the video."
        in prompt
    )


def test_video_clip_transcript_is_given() -> None:
    content = module_from()
    # modules/m.md: page, article lens (from the outcome), video lens (uncategorized).
    module = content.modules["modules/m.md"]
    assert module.sections[2].kind == "video"
    prompt = build_system_prompt(target(content, "modules/m.md", 2, 1))
    assert "[Transcript of a clip from the video 'V']\ntwo" in prompt


def test_where_the_student_is_and_the_base_prompt() -> None:
    content = module_from()
    prompt = build_system_prompt(target(content, "modules/m.md", 0, 1))
    assert prompt.startswith(DEFAULT_BASE_PROMPT)
    assert "- Course: Course\n- Module: Module\n- Section 1 of 3: Start (page)" in prompt
    custom = build_system_prompt(target(content, "modules/m.md", 0, 1), base_prompt="Be Socratic.")
    assert custom.startswith("Be Socratic.")


def test_a_segment_that_is_not_a_chat_is_refused() -> None:
    content = module_from()
    with pytest.raises(ValueError, match="not a chat"):
        target(content, "modules/m.md", 0, 0)
    with pytest.raises(ValueError, match="no such section"):
        target(content, "modules/m.md", 9, 0)

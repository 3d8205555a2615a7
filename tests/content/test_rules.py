"""One fixture per validation rule of docs/content-format.md, each with its exact message."""

from __future__ import annotations

import pytest

from lens.content.parsing import load_content
from lens.content.parsing.transcript import youtube_id
from lens.content.syntax import parse_time, strip_critic_markup

COURSE = """---
id: 00000000-0000-4000-8000-000000000001
slug: c
title: Course
---
# Module: [[../modules/m]]
# Meeting: 1
# Lesson: [[../modules/old]]
optional:: true
"""
MODULE = """---
id: 00000000-0000-4000-8000-000000000002
slug: m
title: Module
---
# Page: Start
id:: 00000000-0000-4000-8000-000000000003
## Text
content::
Hello.
## Chat
instructions::
Talk.
# Learning Outcome:
source:: [[../Learning Outcomes/LO]]
# Uncategorized:
## Lens:
optional:: yes
source:: [[../Lenses/V|The video]]
"""
OUTCOME = """---
id: 00000000-0000-4000-8000-000000000004
---
## Test:
source::
## Lens:
source:: [[../Lenses/A]]
"""
ARTICLE_LENS = """---
id: 00000000-0000-4000-8000-000000000005
---
### Article: An article
source:: [[../articles/a]]
#### Article-excerpt
from:: "First part"
to:: "ends here."
#### Article-excerpt
from:: Third part
"""
VIDEO_LENS = """---
id: 00000000-0000-4000-8000-000000000006
---
### Video: A video
source:: [[../video_transcripts/v]]
#### Video-excerpt
from:: 0:01
to:: 0:02
#### Chat
instructions::
Ask.
"""
ARTICLE = """---
title: A
author: B
source_url: https://example.org/a
---
First part starts and ends here. Second part is skipped. Third part is last.
"""
TRANSCRIPT = """---
url: https://youtu.be/abcdefghijk
title: V
channel: C
---
one two three
"""
TIMESTAMPS = (
    '[{"text": "one", "start": "0:00.50"}, {"text": "two", "start": "0:01.50"}, '
    '{"text": "three", "start": "0:02.50"}]'
)
OLD = """---
slug: old
title: Old
---
# Article: Old article
source:: [[../articles/a]]
## Article-excerpt
from:: second part
to:: skipped.
# Text: Note
content::
Some text.
# Chat: Talk
instructions::
Go.
showTutorPreviousContent:: false
"""


def repo(**changes: str | None) -> dict[str, str]:
    files = {
        "courses/c.md": COURSE,
        "modules/m.md": MODULE,
        "modules/old.md": OLD,
        "Learning Outcomes/LO.md": OUTCOME,
        "Lenses/A.md": ARTICLE_LENS,
        "Lenses/V.md": VIDEO_LENS,
        "articles/a.md": ARTICLE,
        "video_transcripts/v.md": TRANSCRIPT,
        "video_transcripts/v.timestamps.json": TIMESTAMPS,
        "README.md": "# notes, ignored",
    }
    for path, text in changes.items():
        path = path.replace("__", "/").replace("_SP_", " ")
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text
    return files


def problems(files: dict[str, str]) -> list[str]:
    return [str(p) for p in load_content(files).all_problems()]


def test_the_base_fixture_is_valid_and_flattens() -> None:
    content = load_content(repo())
    assert problems(repo()) == []
    assert content.checked == 9  # README.md is a note, not content
    module = content.modules["modules/m.md"]
    assert [(s.kind, s.title, s.optional, s.outcome_id) for s in module.sections] == [
        ("page", "Start", False, None),
        ("article", "An article", False, "00000000-0000-4000-8000-000000000004"),
        ("video", "A video", True, None),
    ]
    first, third = module.sections[1].segments
    assert first.text == "First part starts and ends here."
    assert third.text == "Third part is last."
    assert third.omitted_before == "Second part is skipped."
    clip = module.sections[2].segments[0]
    assert (clip.start_seconds, clip.end_seconds, clip.transcript) == (1.0, 2.0, "two")
    old = content.modules["modules/old.md"]
    assert old.dialect == 1
    assert old.sections[0].segments[0].text == "Second part is skipped."
    assert old.sections[2].segments[0].hide_previous_from_tutor is True
    course = content.courses["c"]
    assert [(u.meeting, [m.path for m in u.modules]) for u in course.units] == [
        (1, ["modules/m.md"]),
        (None, ["modules/old.md"]),
    ]
    assert course.units[1].modules[0].optional is True


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


CASES = [
    (
        "missing frontmatter",
        {"modules__m.md": MODULE.split("---\n", 2)[2]},
        "modules/m.md:1: frontmatter: Missing frontmatter (a block between two `---` lines)",
    ),
    (
        "missing frontmatter field",
        {"modules__m.md": sub(MODULE, "title: Module\n", "")},
        "modules/m.md:1: frontmatter: Missing required field: title",
    ),
    (
        "missing required field",
        {"modules__m.md": sub(MODULE, "instructions::\nTalk.\n", "")},
        "modules/m.md:11: # Page: Start > ## Chat: Missing required field: instructions::",
    ),
    (
        "unknown section",
        {"modules__m.md": sub(MODULE, "# Uncategorized:", "# Quiz:")},
        "modules/m.md:16: # Quiz:: Unknown section `Quiz` "
        "(expected `# Page:`, `# Learning Outcome:` or `# Uncategorized:`)",
    ),
    (
        "unknown segment",
        {"modules__m.md": sub(MODULE, "## Chat\n", "## Poll\n")},
        "modules/m.md:11: # Page: Start > ## Poll: Segment `Poll` is not allowed at all "
        "(expected: Chat, Text)",
    ),
    (
        "excerpt in a page",
        {
            "modules__m.md": sub(
                MODULE, "## Chat\ninstructions::\nTalk.\n", "## Article-excerpt\nfrom:: x\n"
            )
        },
        "modules/m.md:11: # Page: Start > ## Article-excerpt: Segment `Article-excerpt` is not "
        "allowed here (expected: Chat, Text)",
    ),
    (
        "video excerpt in an article lens",
        {"Lenses__A.md": ARTICLE_LENS + "#### Video-excerpt\nfrom:: 0:01\n"},
        "Lenses/A.md:11: ### Article: An article > #### Video-excerpt: Segment `Video-excerpt` "
        "is not allowed here (expected: Article-excerpt, Chat, Text)",
    ),
    (
        "unknown field",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02\n", "to:: 0:02\nspeed:: 2\n")},
        "Lenses/V.md:9: ### Video: A video > #### Video-excerpt: Unknown field speed:: "
        "(expected: from::, optional::, to::)",
    ),
    (
        "one colon",
        {"Lenses__V.md": sub(VIDEO_LENS, "from:: 0:01", "from: 0:01")},
        "Lenses/V.md:7: ### Video: A video > #### Video-excerpt: `from:` has one colon; "
        "did you mean `from::`?",
    ),
    (
        "page without title",
        {"modules__m.md": sub(MODULE, "# Page: Start", "# Page:")},
        "modules/m.md:6: # Page:: Page needs a title: `# Page: <title>`",
    ),
    (
        "title where none is allowed",
        {"modules__m.md": sub(MODULE, "# Learning Outcome:", "# Learning Outcome: Extra")},
        "modules/m.md:14: # Learning Outcome: Extra: Learning Outcome takes no title "
        "(found 'Extra')",
    ),
    (
        "link without ../",
        {"modules__m.md": sub(MODULE, "[[../Learning Outcomes/LO]]", "[[Learning Outcomes/LO]]")},
        "modules/m.md:15: # Learning Outcome:: Link [[Learning Outcomes/LO]] must start with ../ "
        "(relative to this file)",
    ),
    (
        "link to a missing file",
        {"modules__m.md": sub(MODULE, "[[../Lenses/V|The video]]", "[[../Lenses/Nope]]")},
        "modules/m.md:19: # Uncategorized: > ## Lens:: Link target does not exist: "
        "[[../Lenses/Nope]]",
    ),
    (
        "lens with two resources",
        {"Lenses__A.md": ARTICLE_LENS + "### Video: Also\nsource:: [[../video_transcripts/v]]\n"},
        "Lenses/A.md:11: A lens needs exactly one `### Article:` or `### Video:` section, found 2",
    ),
    (
        "lens without excerpt",
        {"Lenses__V.md": sub(VIDEO_LENS, "#### Video-excerpt\nfrom:: 0:01\nto:: 0:02\n", "")},
        "Lenses/V.md:4: ### Video: A video: A video lens needs at least one `#### Video-excerpt`",
    ),
    (
        "lens with a title field",
        {"Lenses__V.md": sub(VIDEO_LENS, "---\n###", "title: No\n---\n###")},
        "Lenses/V.md:3: frontmatter: A lens takes no title field; the title comes from the "
        "`### Article:` or `### Video:` header",
    ),
    (
        "anchor missing",
        {"Lenses__A.md": sub(ARTICLE_LENS, '"ends here."', '"nowhere"')},
        "Lenses/A.md:8: ### Article: An article > #### Article-excerpt: to:: anchor 'nowhere' "
        "not found in articles/a.md after from::",
    ),
    (
        "anchor twice",
        {"Lenses__A.md": sub(ARTICLE_LENS, '"First part"', '"part"')},
        "Lenses/A.md:7: ### Article: An article > #### Article-excerpt: from:: anchor 'part' "
        "occurs 3 times in articles/a.md; it must occur exactly once",
    ),
    (
        "bad boolean",
        {"modules__m.md": sub(MODULE, "optional:: yes", "optional:: maybe")},
        "modules/m.md:18: # Uncategorized: > ## Lens:: optional:: must be true or false "
        "(or yes/no, 1/0), not 'maybe'",
    ),
    (
        "bad time",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02", "to:: 0:75")},
        "Lenses/V.md:8: ### Video: A video > #### Video-excerpt: to:: must be a time like "
        "1:10, 1:02:03 or 70, not '0:75'",
    ),
    (
        "duplicate id",
        {
            "Lenses__V.md": sub(
                VIDEO_LENS,
                "00000000-0000-4000-8000-000000000006",
                "00000000-0000-4000-8000-000000000005",
            )
        },
        "Lenses/V.md:2: frontmatter: Duplicate id 00000000-0000-4000-8000-000000000005 "
        "(also at Lenses/A.md:2)",
    ),
    (
        "bad course line",
        {"courses__c.md": COURSE + "# Quiz: 1\n"},
        "courses/c.md:10: # Quiz: 1: A course line must be a module link (`# Module: [[...]]`) "
        "or a meeting (`# Meeting: <n>`)",
    ),
    (
        "meeting without a number",
        {"courses__c.md": sub(COURSE, "# Meeting: 1", "# Meeting: one")},
        "courses/c.md:7: # Meeting: one: A meeting line needs a number: `# Meeting: 1`, not 'one'",
    ),
    (
        "v1 section missing source",
        {"modules__old.md": sub(OLD, "source:: [[../articles/a]]\n", "")},
        "modules/old.md:5: # Article: Old article: Missing required field: source::",
    ),
    (
        "text outside a field",
        {"modules__m.md": sub(MODULE, "## Text\ncontent::\n", "## Text\n")},
        "modules/m.md:9: # Page: Start > ## Text: Text outside a field "
        "(put it under a field such as `content::`)",
    ),
]


@pytest.mark.parametrize("changes,expected", [pytest.param(c, e, id=name) for name, c, e in CASES])
def test_rule(changes: dict[str, str], expected: str) -> None:
    found = problems(repo(**changes))
    assert expected in found, "\n".join(found)


def test_a_broken_file_does_not_stop_the_others() -> None:
    content = load_content(repo(**{"Lenses__V.md": "### Video: broken, no frontmatter\n"}))
    assert "modules/m.md" not in content.modules  # it uses the broken lens
    assert "modules/old.md" in content.modules
    assert content.invalid == 2  # the lens and the module using it
    assert any(
        "The lens Lenses/V.md is invalid" in p for p in problems(repo(**{"Lenses__V.md": "x"}))
    )


def test_drafts_and_notes_are_not_loaded() -> None:
    files = repo(
        **{
            "modules__drafts__x.md": "not even frontmatter",
            "modules__WIP intro.md": "nope",
            "Lenses__Work in progress__y.md": "nope",
        }
    )
    content = load_content(files)
    assert problems(files) == []
    assert content.checked == 9


def test_critic_markup_rejects_suggestions() -> None:
    text = "a{>>note\nmore<<}b {++add++}c {--keep--} {~~old~>new~~} {==mark==}"
    assert strip_critic_markup(text) == "a\nb c keep old mark"


def test_escaped_headings_and_multiline_fields() -> None:
    module = sub(
        MODULE, "content::\nHello.\n", "content::\n!## Heading\n\nPara one.\n\nPara two.\n"
    )
    content = load_content(repo(**{"modules__m.md": module}))
    text = content.modules["modules/m.md"].sections[0].segments[0].content
    assert text == "## Heading\n\nPara one.\n\nPara two."


@pytest.mark.parametrize(
    "value,seconds",
    [("1:10", 70), ("1:02:03", 3723), ("70", 70), ("75:30.5", 4530.5), ("0:75", None), ("x", None)],
)
def test_times(value: str, seconds: float | None) -> None:
    assert parse_time(value) == seconds


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=abcdefghijk",
        "https://youtu.be/abcdefghijk",
        "https://www.youtube.com/embed/abcdefghijk?start=3",
        "https://www.youtube.com/watch?feature=x&v=abcdefghijk",
    ],
)
def test_youtube_ids(url: str) -> None:
    assert youtube_id(url) == "abcdefghijk"

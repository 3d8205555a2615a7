"""One fixture per validation rule of docs/content-format.md, each with its exact message."""

from __future__ import annotations

import re

import pytest

from lens.content.parsing import load_content
from lens.content.parsing.transcript import youtube_id
from lens.content.syntax import link_problems, parse_time, strip_critic_markup

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


def found(files: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """Every problem as (file, line, level, rule)."""
    return [(p.path, p.line, p.level, p.rule) for p in load_content(files).all_problems()]


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
    assert content.module_by_slug("m") is module
    assert content.lens_by_id("00000000-0000-4000-8000-000000000006").title == "A video"


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


E, W = "error", "warning"
# (name, changes, (file, line, level, rule), a part of the message)
CASES = [
    (
        "missing frontmatter",
        {"modules__m.md": MODULE.split("---\n", 2)[2]},
        ("modules/m.md", 1, E, "frontmatter.missing"),
        "Missing frontmatter (a block between two `---` lines)",
    ),
    (
        "missing frontmatter field",
        {"modules__m.md": sub(MODULE, "title: Module\n", "")},
        ("modules/m.md", 1, E, "frontmatter.required"),
        "Missing required field `title`",
    ),
    (
        "blank title",
        {"modules__m.md": sub(MODULE, "title: Module\n", "title: '  '\n")},
        ("modules/m.md", 4, E, "frontmatter.required"),
        "Missing required field `title` (it is blank)",
    ),
    (
        "slug format",
        {"modules__m.md": sub(MODULE, "slug: m\n", "slug: Intro To AI\n")},
        ("modules/m.md", 3, E, "slug.format"),
        "slug 'Intro To AI' must be lowercase letters, digits and single hyphens "
        "(like 'intro-to-ai')",
    ),
    (
        "missing required field",
        {"modules__m.md": sub(MODULE, "instructions::\nTalk.\n", "")},
        ("modules/m.md", 11, E, "field.required"),
        "Missing required field instructions::",
    ),
    (
        "unknown section",
        {"modules__m.md": sub(MODULE, "# Uncategorized:", "# Quiz:")},
        ("modules/m.md", 16, E, "section.unknown"),
        "Unknown section `Quiz` (expected `# Page:`, `# Learning Outcome:` or "
        "`# Uncategorized:`) (in # Quiz:)",
    ),
    (
        "unknown segment",
        # Right after an inline field: a heading inside a multi-line value would be text.
        {"modules__m.md": sub(MODULE, "## Text\ncontent::\nHello.\n", "## Poll: x\nask:: y\n")},
        ("modules/m.md", 8, E, "segment.unknown"),
        "Segment `Poll` is not allowed at all (expected: Chat, Text)",
    ),
    (
        "excerpt in a page",
        {
            "modules__m.md": sub(
                MODULE, "## Chat\ninstructions::\nTalk.\n", "## Article-excerpt\nfrom:: x\n"
            )
        },
        ("modules/m.md", 11, E, "segment.misplaced"),
        "Segment `Article-excerpt` is not allowed here (expected: Chat, Text)",
    ),
    (
        "video excerpt in an article lens",
        {"Lenses__A.md": ARTICLE_LENS + "#### Video-excerpt\nfrom:: 0:01\n"},
        ("Lenses/A.md", 11, E, "segment.misplaced"),
        "Segment `Video-excerpt` is not allowed here (expected: Article-excerpt, Chat, Text)",
    ),
    (
        "unknown field",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02\n", "to:: 0:02\nspeed:: 2\n")},
        ("Lenses/V.md", 9, W, "field.unknown"),
        "Unknown field speed:: (expected: from::, optional::, to::); it is ignored",
    ),
    (
        "misspelt field",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02\n", "to:: 0:02\noptinal:: yes\n")},
        ("Lenses/V.md", 9, W, "field.unknown"),
        "Unknown field optinal:: (did you mean optional::? expected: from::, optional::, to::)",
    ),
    (
        "misplaced field",
        {"modules__m.md": sub(MODULE, "content::\nHello.\n", "content::\nHello.\nfrom:: 0:01\n")},
        ("modules/m.md", 11, W, "field.unknown"),
        "Field from:: does not belong here (it is a field of Article-excerpt and "
        "Video-excerpt); it is ignored",
    ),
    (
        "unknown frontmatter field",
        {"modules__m.md": sub(MODULE, "title: Module\n", "title: Module\ntitel: Modul\n")},
        ("modules/m.md", 5, W, "frontmatter.unknown-field"),
        "Unknown field `titel` (did you mean `title`?); it is ignored",
    ),
    (
        "wiki-link in frontmatter",
        {"modules__m.md": sub(MODULE, "title: Module\n", "title: Module\ndiscussion: [[x]]\n")},
        ("modules/m.md", 5, W, "frontmatter.wiki-link"),
        "`discussion` holds a wiki-link; frontmatter values are read as plain text",
    ),
    (
        "one colon",
        {"Lenses__V.md": sub(VIDEO_LENS, "from:: 0:01", "from: 0:01")},
        ("Lenses/V.md", 7, W, "field.one-colon"),
        "`from:` has one colon, so it is text, not a field; did you mean `from::`?",
    ),
    (
        "page without title",
        {"modules__m.md": sub(MODULE, "# Page: Start", "# Page:")},
        ("modules/m.md", 6, W, "title.missing"),
        "Page has no title: `# Page: <title>`",
    ),
    (
        "page without id",
        {"modules__m.md": sub(MODULE, "id:: 00000000-0000-4000-8000-000000000003\n", "")},
        ("modules/m.md", 6, W, "page.no-id"),
        "The page has no `id::`",
    ),
    (
        "link to a missing file",
        {"modules__m.md": sub(MODULE, "[[../Lenses/V|The video]]", "[[../Lenses/Nope]]")},
        ("modules/m.md", 19, W, "link.missing"),
        "Link target does not exist: [[../Lenses/Nope]] (in # Uncategorized: > ## Lens:)",
    ),
    (
        "lens with two resources",
        {"Lenses__A.md": ARTICLE_LENS + "### Video: Also\nsource:: [[../video_transcripts/v]]\n"},
        ("Lenses/A.md", 11, E, "lens.resources"),
        "A lens needs exactly one `### Article:` or `### Video:` section, found 2",
    ),
    (
        "lens without excerpt",
        {"Lenses__V.md": sub(VIDEO_LENS, "#### Video-excerpt\nfrom:: 0:01\nto:: 0:02\n", "")},
        ("Lenses/V.md", 4, E, "lens.no-excerpt"),
        "A video lens needs at least one `#### Video-excerpt`",
    ),
    (
        "a module's broken lens is left out",
        {"Lenses__V.md": sub(VIDEO_LENS, "#### Video-excerpt\nfrom:: 0:01\nto:: 0:02\n", "")},
        ("modules/m.md", 19, W, "link.invalid"),
        "Lenses/V.md cannot be served: A video lens needs at least one `#### Video-excerpt`, "
        "so this section is left out",
    ),
    (
        "lens with a title field",
        {"Lenses__V.md": sub(VIDEO_LENS, "---\n###", "title: No\n---\n###")},
        ("Lenses/V.md", 3, W, "lens.title-field"),
        "A lens takes no `title` field",
    ),
    (
        "anchor missing",
        {"Lenses__A.md": sub(ARTICLE_LENS, '"ends here."', '"nowhere"')},
        ("Lenses/A.md", 8, E, "anchor.missing"),
        "to:: anchor 'nowhere' not found in articles/a.md after from::",
    ),
    (
        "anchor twice",
        {"Lenses__A.md": sub(ARTICLE_LENS, '"First part"', '"part"')},
        ("Lenses/A.md", 7, E, "anchor.ambiguous"),
        "from:: anchor 'part' occurs 3 times in articles/a.md; it must occur exactly once",
    ),
    (
        "bad boolean",
        {"modules__m.md": sub(MODULE, "optional:: yes", "optional:: maybe")},
        ("modules/m.md", 18, W, "field.boolean"),
        "optional:: must be true or false (or yes/no, 1/0), not 'maybe'; read as false",
    ),
    (
        "bad time",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02", "to:: 0:75")},
        ("Lenses/V.md", 8, E, "clip.time"),
        "to:: must be a time like 1:10, 1:02:03 or 70, not '0:75'",
    ),
    (
        "clip past the transcript's end",
        {"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02", "to:: 5:00")},
        ("Lenses/V.md", 6, W, "clip.beyond-end"),
        "The clip (0:01 to 5:00) goes past the transcript's last words at 0:02",
    ),
    (
        "clip without timestamps",
        {"video_transcripts__v.timestamps.json": None},
        ("Lenses/V.md", 6, W, "clip.no-timestamps"),
        "so this clip's transcript is the whole transcript text",
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
        ("Lenses/V.md", 2, W, "id.duplicate"),
        "Duplicate id 00000000-0000-4000-8000-000000000005, also at Lenses/A.md:2: links name "
        "files, so they are not affected; where Lens looks the id up (progress, /lens/<id>) it "
        "uses Lenses/A.md",
    ),
    (
        "id that is not a UUID",
        {"Lenses__V.md": sub(VIDEO_LENS, "00000000-0000-4000-8000-000000000006", "video-1")},
        ("Lenses/V.md", 2, W, "id.format"),
        "id 'video-1' is not a UUID; it is used as written",
    ),
    (
        "bad course line",
        {"courses__c.md": COURSE + "# Quiz: 1\n"},
        ("courses/c.md", 10, W, "course.line"),
        "this one is ignored",
    ),
    (
        "meeting given twice",
        {"courses__c.md": COURSE + "# Meeting: 1\n"},
        ("courses/c.md", 10, W, "meeting.number"),
        "Meeting 1 appears twice; the modules above are due before both",
    ),
    (
        "completion meetings not a number",
        {
            "courses__c.md": sub(
                COURSE, "title: Course\n", "title: Course\ncompletion_meetings: most\n"
            )
        },
        ("courses/c.md", 5, W, "completion.meetings"),
        "completion_meetings is a number of meetings (like 4), not 'most'; the default (two "
        "thirds of the meetings) applies",
    ),
    (
        "completion modules unknown",
        {
            "courses__c.md": sub(
                COURSE, "title: Course\n", "title: Course\ncompletion_modules: some\n"
            )
        },
        ("courses/c.md", 5, W, "completion.modules"),
        "completion_modules is one of required, all, none, not 'some'; 'required' applies",
    ),
    (
        "module listed twice",
        {"courses__c.md": COURSE + "# Module: [[../modules/m]]\n"},
        ("courses/c.md", 10, W, "course.repeated"),
        "modules/m.md is already listed at line 6; both rows open the first",
    ),
    (
        "course links a missing module",
        {"courses__c.md": sub(COURSE, "[[../modules/m]]", "[[../modules/gone]]")},
        ("courses/c.md", 6, W, "link.missing"),
        "Link target does not exist: [[../modules/gone]]",
    ),
    (
        "v1 section missing source",
        {"modules__old.md": sub(OLD, "source:: [[../articles/a]]\n", "")},
        ("modules/old.md", 5, W, "link.none"),
        "The section has no `source::` link, so this section is left out",
    ),
    (
        "text outside a field",
        {"modules__m.md": sub(MODULE, "## Text\ncontent::\n", "## Text\n")},
        ("modules/m.md", 9, W, "text.no-field"),
        "Text without `content::` above it; it is read as the content",
    ),
    (
        "module without sections",
        {"modules__m.md": MODULE[: MODULE.index("# Page")]},
        ("modules/m.md", 1, W, "module.no-sections"),
        "The module has no sections",
    ),
    (
        "test not written yet",
        {
            "Learning Outcomes__LO.md": sub(
                OUTCOME, "source::\n## Lens", "source:: [[../Tests/T]]\n## Lens"
            )
        },
        ("Learning Outcomes/LO.md", 5, W, "link.missing"),
        "Link target does not exist: [[../Tests/T]]",
    ),
    (
        "article source_url not a web address",
        {"articles__a.md": sub(ARTICLE, "https://example.org/a", "example.org/a")},
        ("articles/a.md", 4, W, "article.source-url"),
        "`source_url` must be an http(s) URL, not 'example.org/a'; no link is shown",
    ),
    (
        "transcript without a title",
        {"video_transcripts__v.md": sub(TRANSCRIPT, "title: V\n", "")},
        ("video_transcripts/v.md", 1, W, "transcript.title"),
        "No `title`; the video is shown without one",
    ),
    (
        "a link that runs code",
        {"modules__m.md": sub(MODULE, "Hello.\n", "Hello. [go](javascript:alert(1))\n")},
        ("modules/m.md", 10, E, "link.unsafe"),
        "`javascript:` addresses can run code in the reader's browser",
    ),
    (
        "a link that runs code, hidden by an entity",
        {"articles__a.md": ARTICLE + '<a href="jav&#x61;script:alert(1)">x</a>\n'},
        ("articles/a.md", 7, E, "link.unsafe"),
        "`javascript:` addresses",
    ),
    (
        "a link of another app",
        {"modules__m.md": sub(MODULE, "Hello.\n", "Hello.\n\n[n]: obsidian://open?file=x\n")},
        ("modules/m.md", 12, W, "link.scheme"),
        "`obsidian:` addresses are shown as text, not as links",
    ),
    (
        "missing image",
        {"modules__m.md": sub(MODULE, "Hello.\n", "Hello.\n![[nowhere.png]]\n")},
        ("modules/m.md", 11, W, "embed.missing"),
        "Image not found in the repository (or larger than 5 MB): ![[nowhere.png]]; it is left out",
    ),
]


@pytest.mark.parametrize(
    "changes,where,message", [pytest.param(c, w, m, id=name) for name, c, w, m in CASES]
)
def test_rule(changes: dict[str, str], where: tuple[str, int, str, str], message: str) -> None:
    content = load_content(repo(**changes))
    matching = [
        p
        for p in content.all_problems()
        if (p.path, p.line, p.level, p.rule) == where and message in str(p)
    ]
    assert matching, "\n".join(str(p) for p in content.all_problems())
    # No doubled punctuation in what authors read (field names end in `::` by design).
    text = re.sub(r"\w+::|\.\./|\.\.\.", "x", str(matching[0]))
    assert not re.search(r"[.,;:] ?[.,;:]", text), text


def test_warnings_leave_the_file_served_and_errors_do_not() -> None:
    content = load_content(repo(**{"Lenses__V.md": sub(VIDEO_LENS, "to:: 0:02", "to:: 0:75")}))
    assert "Lenses/V.md" not in content.lenses
    module = content.modules["modules/m.md"]  # served without the broken lens
    assert [s.kind for s in module.sections] == ["page", "article"]
    assert module.notes == (
        "# Uncategorized: > ## Lens: (line 19): Lenses/V.md cannot be served: "
        "to:: must be a time like 1:10, 1:02:03 or 70, not '0:75'",
    )
    assert content.invalid == 1 and content.error_count == 1 and content.warning_count == 1


def test_only_web_mail_and_relative_links_pass() -> None:
    body = (
        "[a](https://x.org) [b](http://x.org) [c](mailto:a@x.org) [d](../x) [e](#top)"
        ' <a href="/path">f</a> ![g](img.png) <https://x.org/auto> [[wiki link]]\n'
    )
    assert link_problems("m.md", body) == []
    unsafe = "[x](  JavaScript:alert(1)) ![y](data:text/html,hi) <a href='vbscript:x'>z</a>\n"
    assert [p.rule for p in link_problems("m.md", unsafe)] == ["link.unsafe"] * 3
    content = load_content(repo(**{"articles__a.md": ARTICLE + "[x](javascript:alert(1))\n"}))
    # The article is not served; the module is, without it.
    assert [s.kind for s in content.modules["modules/m.md"].sections] == ["page", "video"]


def test_a_broken_file_does_not_stop_the_others() -> None:
    content = load_content(repo(**{"Lenses__V.md": "### Video: broken, no frontmatter\n"}))
    assert "modules/m.md" in content.modules  # served without the broken lens
    assert "modules/old.md" in content.modules
    assert content.invalid == 1  # the lens only
    assert ("modules/m.md", 19, W, "link.invalid") in found(
        repo(**{"Lenses__V.md": "### Video: broken, no frontmatter\n"})
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


def test_critic_markup_metadata_never_shows() -> None:
    meta = '{"author":"Ada","time":1700000000}@@'
    text = f"{{++{meta}added++}}{{--{meta}kept--}} {{~~{meta}old~>new~~}} {{=={meta}mark==}}"
    assert strip_critic_markup(text) == "kept old mark"


def test_escaped_headings_and_multiline_fields() -> None:
    module = sub(
        MODULE,
        "content::\nHello.\n",
        "content::\n!## Heading\n\nPara one.\n\\### Also a heading\n\nPara two.\n",
    )
    content = load_content(repo(**{"modules__m.md": module}))
    text = content.modules["modules/m.md"].sections[0].segments[0].content
    assert text == "## Heading\n\nPara one.\n### Also a heading\n\nPara two."


def test_a_plain_heading_inside_text_is_text() -> None:
    module = sub(MODULE, "content::\nHello.\n", "content::\nHello.\n# Why it matters\nBecause.\n")
    content = load_content(repo(**{"modules__m.md": module}))
    assert problems(repo(**{"modules__m.md": module})) == []
    text = content.modules["modules/m.md"].sections[0].segments[0].content
    assert text == "Hello.\n# Why it matters\nBecause."


def test_headers_in_any_case() -> None:
    module = sub(sub(MODULE, "## Chat\n", "## CHAT\n"), "## Text\n", "## text\n")
    content = load_content(repo(**{"modules__m.md": module}))
    assert problems(repo(**{"modules__m.md": module})) == []
    kinds = [s.kind for s in content.modules["modules/m.md"].sections[0].segments]
    assert kinds == ["text", "chat"]


def test_v1_text_without_title_and_critic_markup_in_v1() -> None:
    old = sub(
        OLD,
        "# Text: Note\ncontent::\nSome text.",
        "# Text\ncontent::\nSome {++new ++}text{>>hm<<}.",
    )
    content = load_content(repo(**{"modules__old.md": old}))
    assert problems(repo(**{"modules__old.md": old})) == []
    section = content.modules["modules/old.md"].sections[1]
    assert (section.kind, section.title, section.segments[0].content) == ("text", "", "Some text.")


def test_obsidian_comments_are_dropped() -> None:
    module = sub(MODULE, "Hello.\n", "Hello %%inline note%%there.\n%%\nA note\nover lines\n%%\n")
    content = load_content(repo(**{"modules__m.md": module}))
    text = content.modules["modules/m.md"].sections[0].segments[0].content
    assert text == "Hello there."


def test_what_older_and_newer_modules_may_leave_out_or_add() -> None:
    module = (
        "---\ncontentId: 00000000-0000-4000-8000-0000000000aa\nslug: m\ntitle: Module\n"
        "author:\n  - Ada\n  - Grace\ntldr: In short.\nsummary_for_tutor: For the tutor.\n"
        "slug-aliases: [old-m, older-m]\ntags:\n  - safety\ndiscussion: https://forum.example/t/1\n"
        "---\n"
        + MODULE.split("---\n", 2)[2].replace("# Learning Outcome:", "# Learning Outcome: Why")
    )
    files = repo(**{"modules__m.md": module})
    content = load_content(files)
    assert problems(files) == []
    m = content.modules["modules/m.md"]
    assert (m.id, m.tldr, m.summary_for_tutor, m.slug_aliases, m.tags, m.discussion) == (
        "00000000-0000-4000-8000-0000000000aa",
        "In short.",
        "For the tutor.",
        ("old-m", "older-m"),
        ("safety",),
        "https://forum.example/t/1",
    )
    assert content.slug_aliases == {"old-m": "m", "older-m": "m"}


def test_named_meetings_are_numbered_by_order() -> None:
    course = sub(COURSE, "# Meeting: 1", "# Meeting: Introduction") + "# Meeting: Wrap-up\n"
    content = load_content(repo(**{"courses__c.md": course}))
    assert problems(repo(**{"courses__c.md": course})) == []
    units = content.courses["c"].units
    assert [(u.number, u.meeting, u.meeting_name) for u in units] == [
        (1, 1, "Introduction"),
        (2, 2, "Wrap-up"),
    ]


def test_article_with_authors_as_a_list_and_no_source_url() -> None:
    article = "---\ntitle: A\nauthor:\n  - B\n  - C\n---\n" + ARTICLE.split("---\n", 2)[2]
    content = load_content(repo(**{"articles__a.md": article}))
    assert problems(repo(**{"articles__a.md": article})) == []
    section = content.modules["modules/m.md"].sections[1]
    assert section.article is not None
    assert (section.article.author, section.article.source_url) == ("B, C", None)


def test_clip_without_timestamps_shows_the_transcript_text() -> None:
    content = load_content(repo(**{"video_transcripts__v.timestamps.json": None}))
    clip = content.modules["modules/m.md"].sections[2].segments[0]
    assert clip.transcript == "one two three"


def test_an_editor_copy_with_the_same_id_is_served_and_the_original_wins() -> None:
    files = repo(**{"Lenses__V 1.md": VIDEO_LENS, "Lenses__A copy.md": ARTICLE_LENS})
    content = load_content(files)
    assert content.invalid == 0
    assert {"Lenses/V.md", "Lenses/V 1.md", "Lenses/A copy.md"} <= set(content.lenses)
    assert content.ids["00000000-0000-4000-8000-000000000006"] == "Lenses/V.md"
    assert content.ids["00000000-0000-4000-8000-000000000005"] == "Lenses/A.md"
    assert len(content.modules["modules/m.md"].sections) == 3  # nothing linking them broke
    rules = [(p.path, p.rule) for p in content.all_problems()]
    assert rules.count(("Lenses/V 1.md", "id.duplicate")) == 1
    assert rules.count(("Lenses/V.md", "id.duplicate")) == 1


def test_two_modules_with_one_slug_the_copy_is_the_error() -> None:
    files = repo(**{"modules__m 1.md": MODULE.replace("000000000002", "0000000000a2")})
    content = load_content(files)
    assert content.module_slugs["m"] == "modules/m.md"
    assert "modules/m 1.md" not in content.modules
    assert ("modules/m 1.md", 3, E, "slug.duplicate") in found(files)
    message = next(p.message for p in content.all_problems() if p.rule == "slug.duplicate")
    assert message == "slug 'm' is also the slug of modules/m.md; modules/m.md is served under it"


def test_obsidian_links_by_root_path_and_by_name() -> None:
    module = sub(
        sub(MODULE, "[[../Learning Outcomes/LO]]", "[[Learning Outcomes/LO]]"),
        "[[../Lenses/V|The video]]",
        "[[V]]",
    )
    files = repo(**{"modules__m.md": module})
    assert problems(files) == []
    assert len(load_content(files).modules["modules/m.md"].sections) == 3


def test_a_name_several_files_carry_is_a_warning_and_the_original_is_used() -> None:
    files = repo(
        **{
            "modules__m.md": sub(MODULE, "[[../Lenses/V|The video]]", "[[V]]"),
            "Lenses__old__V.md": VIDEO_LENS.replace("000000000006", "0000000000b6"),
        }
    )
    content = load_content(files)
    assert ("modules/m.md", 19, W, "link.ambiguous") in found(files)
    assert content.modules["modules/m.md"].sections[2].source_path == "Lenses/V.md"


def test_images_are_served_from_the_repository() -> None:
    module = sub(MODULE, "Hello.\n", "Hello.\n![[diagram.png]]\n![[sub/My chart.png|300]]\n")
    files = repo(**{"modules__m.md": module})
    content = load_content(files, assets={"modules/diagram.png", "sub/My chart.png", "x.png"})
    assert content.all_problems() == []
    text = content.modules["modules/m.md"].sections[0].segments[0].content
    assert text == (
        "Hello.\n![diagram.png](/content/assets/modules/diagram.png)\n"
        "![My chart.png](/content/assets/sub/My%20chart.png#lens-size=300)"
    )
    assert content.assets_used == {"modules/diagram.png", "sub/My chart.png"}


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


# -- cases a review of the forgiving rules found ---------------------------------------


def test_a_numbered_name_is_not_a_copy_unless_its_original_is_there() -> None:
    week = MODULE.replace("slug: m\n", "slug: week-1\n")
    files = repo(
        **{
            "modules__Week 1.md": week,
            "modules__Week 1 1.md": week,  # Obsidian's copy of "Week 1.md"
            "courses__c.md": sub(COURSE, "[[../modules/m]]", "[[../modules/Week 1]]"),
        }
    )
    content = load_content(files)
    assert content.module_slugs["week-1"] == "modules/Week 1.md"
    assert "modules/Week 1.md" in content.modules
    assert ("modules/Week 1 1.md", 3, E, "slug.duplicate") in found(files)


@pytest.mark.parametrize("value", ["inf", "1e999", "1_0", "nan", "\u0661\u0660"])
def test_only_plain_digits_are_a_time(value: str) -> None:
    files = repo(**{"Lenses__V.md": sub(VIDEO_LENS, "from:: 0:01", f"from:: {value}")})
    assert ("Lenses/V.md", 7, E, "clip.time") in found(files)
    assert parse_time(value) is None


def test_a_written_meeting_number_counts() -> None:
    course = sub(COURSE, "# Meeting: 1", "# Meeting: 2") + "# Meeting: 4\n"
    content = load_content(repo(**{"courses__c.md": course}))
    assert [u.meeting for u in content.courses["c"].units] == [2, 4]


def test_a_v1_module_keeps_its_progress_key_when_it_has_a_content_id() -> None:
    old = sub(OLD, "slug: old\n", "contentId: 00000000-0000-4000-8000-0000000000cc\nslug: old\n")
    content = load_content(repo(**{"modules__old.md": old}))
    assert content.modules["modules/old.md"].id is None  # keyed by its slug, as before


def test_a_text_body_without_content_field_keeps_paragraphs_and_headings() -> None:
    old = sub(
        OLD, "# Text: Note\ncontent::\nSome text.", "# Text: Note\nPara one.\n\n# Why\nPara two."
    )
    content = load_content(repo(**{"modules__old.md": old}))
    module = content.modules["modules/old.md"]
    assert module.dialect == 1
    assert module.sections[1].segments[0].content == "Para one.\n\n# Why\nPara two."
    assert [(p.rule, p.level) for p in content.problems["modules/old.md"]] == [("text.no-field", W)]


def test_lens_segments_at_the_resource_level_belong_to_it() -> None:
    lens = ARTICLE_LENS.replace("#### ", "### ")
    files = repo(**{"Lenses__A.md": lens})
    assert problems(files) == []
    assert len(load_content(files).lenses["Lenses/A.md"].segments) == 2


def test_line_numbers_inside_values_and_frontmatter() -> None:
    module = sub(
        MODULE,
        "content::\nHello.\n",
        "content::\n\n![[gone.png]] and ![alt](also-gone.png)\nmore\n![x](third.png)\n",
    )
    module = sub(module, "title: Module\n", "title: Module\nslug-aliases: [m]\n")
    lines = [
        (p.line, p.rule) for p in load_content(repo(**{"modules__m.md": module})).all_problems()
    ]
    assert (12, "embed.missing") in lines and (14, "embed.missing") in lines
    assert lines.count((12, "embed.missing")) == 2
    assert (5, "slug.alias") in lines  # the slug-aliases line
    stamps = '[\n{"text": "a", "start": "0:01"},\n{"text": "b"},\n{"start": "0:03"}\n]'
    files = repo(**{"video_transcripts__v.timestamps.json": stamps})
    assert [
        (p.line, p.rule)
        for p in load_content(files).problems["video_transcripts/v.timestamps.json"]
    ] == [
        (3, "timestamps.entry"),
        (4, "timestamps.entry"),
    ]


def test_anchors_match_the_article_as_written_when_it_embeds_an_image() -> None:
    article = ARTICLE + "\n![[chart.png]]\n"
    lens = sub(ARTICLE_LENS, '"First part"', '"starts and ends"')
    files = repo(
        **{
            "articles__a.md": article,
            "Lenses__A.md": sub(lens, "from:: Third part", "from:: assets"),
        }
    )
    content = load_content(files, assets={"articles/chart.png"})
    # "assets" appears in the image's rewritten address, never in the article as written.
    assert ("Lenses/A.md", 10, E, "anchor.missing") in [
        (p.path, p.line, p.level, p.rule) for p in content.all_problems()
    ]
    files = repo(**{"articles__a.md": article})
    content = load_content(files, assets={"articles/chart.png"})
    assert content.all_problems() == []


def test_a_byte_order_mark_and_lists_at_column_0_and_keys_with_spaces() -> None:
    article = (
        "\ufeff---\ntitle: A\nauthor:\n- B\n- C\ndate created: 2024-01-01\n---\n"
        + ARTICLE.split("---\n", 2)[2]
    )
    files = repo(**{"articles__a.md": article})
    assert problems(files) == []
    assert load_content(files).modules["modules/m.md"].sections[1].article.author == "B, C"


def test_lens_by_id_serves_a_servable_lens_of_that_id() -> None:
    broken = sub(VIDEO_LENS, "to:: 0:02", "to:: 0:75")  # V.md cannot be served
    files = repo(**{"Lenses__V.md": broken, "Lenses__V copy.md": VIDEO_LENS})
    content = load_content(files)
    assert (
        content.lens_by_id("00000000-0000-4000-8000-000000000006").source_path == "Lenses/V copy.md"
    )


def test_a_transcript_url_must_be_http_youtube() -> None:
    bad = sub(TRANSCRIPT, "https://youtu.be/abcdefghijk", "javascript:alert(1)//?v=abcdefghijk")
    assert ("video_transcripts/v.md", 2, E, "transcript.url") in found(
        repo(**{"video_transcripts__v.md": bad})
    )


def test_unclosed_critic_markup_is_left_as_written() -> None:
    assert strip_critic_markup("a {-- b {++c++} d") == "a {-- b  d"


def test_a_link_climbing_out_is_missing_even_if_the_name_exists() -> None:
    module = sub(MODULE, "[[../Lenses/V|The video]]", "[[../../V]]")
    assert ("modules/m.md", 19, W, "link.missing") in found(repo(**{"modules__m.md": module}))


def test_markdown_links_to_files_that_are_not_images_are_left_alone() -> None:
    module = sub(MODULE, "Hello.\n", "Hello. ![Slides](slides.pdf)\n")
    content = load_content(repo(**{"modules__m.md": module}))
    assert content.all_problems() == []
    assert (
        "![Slides](slides.pdf)" in content.modules["modules/m.md"].sections[0].segments[0].content
    )


def test_an_empty_heading_is_text() -> None:
    module = sub(MODULE, "## Text\ncontent::\nHello.\n", "## Text\ncontent::\nHello.\n#\n")
    assert problems(repo(**{"modules__m.md": module})) == []


def test_cr_only_line_endings() -> None:
    article = ARTICLE.replace("\n", "\r")
    content = load_content(repo(**{"articles__a.md": article}))
    assert content.all_problems() == []
    assert content.modules["modules/m.md"].sections[1].article.body.startswith("First part")


def test_completion_rules_of_a_course() -> None:
    text = COURSE.replace(
        "title: Course\n", "title: Course\ncompletion_meetings: 3\ncompletion_modules: All\n"
    )
    course = load_content(repo(**{"courses__c.md": text})).courses["c"]
    assert (course.completion_meetings, course.completion_modules) == (3, "all")
    plain = load_content(repo()).courses["c"]
    assert (plain.completion_meetings, plain.completion_modules) == (None, "required")


def test_code_and_footnotes_are_not_links_and_odd_spacing_is_seen() -> None:
    quiet = (
        'Write `<a href="javascript:void(0)">` to see it.\n\n'
        '```html\n<img src="data:image/png;base64,AAAA">\n```\n\n'
        "[^1]: Data: from the survey.\n"
    )
    assert link_problems("m.md", quiet) == []
    loud = (
        '<a href=" javascript:alert(1)">a</a>\n'
        '<form action="javascript:alert(2)"><button formaction="vbscript:x">b</button></form>\n'
        '<a href="java\tscript:alert(3)">c</a>\n'
        "[ref]:\n  javascript:alert(4)\n"
    )
    found = [(p.line, p.rule) for p in link_problems("m.md", loud)]
    assert found == [(1, "link.unsafe"), (2, "link.unsafe"), (2, "link.unsafe"),
                     (3, "link.unsafe"), (4, "link.unsafe")]  # fmt: skip

"""A content repository written the way authors write one, checked whole.

`tests/content/corpus/` is an Obsidian vault with two courses: editor copies
("welcome 1.md", "Goodhart's law 1.md"), drafts, `.obsidian/` and `.trash/`, a README,
v1 modules beside v2 ones, links written every way Obsidian writes them, headers in odd
case, critic markup and `%%comments%%`, and the mistakes real vaults carry. Every
problem designed into it is listed by hand in `corpus/EXPECTED.txt`; these tests hold
the parser to that list and to what the design says is served.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lens.cli import app
from lens.content.files import list_folder_assets, read_folder
from lens.content.parsed import ContentSet, TextSegment, VideoExcerpt
from lens.content.parsing import load_content

CORPUS = Path(__file__).parent / "corpus"
Found = tuple[str, int, str, str]  # path, line, level, rule
_EXPECTED_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): (?P<level>error|warning): (?P<rule>\S+)$"
)
_CLI_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): (?P<level>error|warning): .* \[(?P<rule>[\w.-]+)\]$"
)

# Content files: 2 courses, 14 modules, 2 learning outcomes, 11 lenses, 7 articles,
# 3 transcripts and 2 timestamps files.
CHECKED = 41
# In the vault, and never loaded or counted: drafts, notes, editor folders.
SKIPPED = {
    "README.md",
    "Syllabus notes.md",
    ".obsidian/templates/Lens template.md",
    ".trash/old-welcome.md",
    "modules/drafts/welcome-v2.md",
    "modules/drafts/deception.md",
    "modules/WIP red teaming.md",
    "Lenses/Work in progress/Deceptive alignment.md",
    "Learning Outcomes/Drafts/Spot deception.md",
    "articles/attachments/source-notes.md",
}
SERVED = {
    "modules/welcome.md",
    "modules/goals-and-proxies.md",
    "modules/specification-gaming.md",
    "modules/v1/reward-hacking.md",
    "modules/reading-group.md",
    "modules/next-steps.md",
    "modules/mesa-optimisation.md",
    "modules/v1/instrumental-goals.md",
    "modules/interpretability.md",
    "modules/power-seeking.md",
    "modules/extra-reading.md",
}
NOT_SERVED = {
    "modules/welcome 1.md",  # the editor copy: its slug is the original's
    "modules/governance-basics.md",  # a `# Quiz:` section
    "modules/Week 3 Reading.md",  # slug 'Week 3 Reading'
}
BROKEN_LENS = "Lenses/Reward hacking in practice.md"
GOODHART_ID = "e418a224-ade2-40df-872c-8475585c07be"  # the lens and its editor copy
WELCOME_IDS = (  # the module and its two pages, in the original and the copy
    "cea6ecb1-ee07-4eda-a909-0969d370fa13",
    "976e7911-a58e-480c-b8b4-1a037cbb8bb3",
    "61b98438-2a60-4e3d-a693-b9a8ce941f49",
)
EMBEDDED_IMAGES = {
    "articles/attachments/goodhart-curve.png",  # ![[goodhart-curve.png]] in an article
    "articles/attachments/options.png",  # ![Options kept open](attachments/options.png)
    "Lenses/images/cohort-timeline.png",  # ![[cohort-timeline.png]] in a module
    "Lenses/images/inner-outer.png",  # ![[inner-outer.png|300]] in a lens
}


def expected() -> list[Found]:
    found = []
    for text in (CORPUS / "EXPECTED.txt").read_text(encoding="utf-8").splitlines():
        if not text.strip() or text.startswith("#"):
            continue
        match = _EXPECTED_LINE.match(text)
        assert match, f"EXPECTED.txt: cannot read {text!r}"
        found.append((match["path"], int(match["line"]), match["level"], match["rule"]))
    return found


def load(root: Path = CORPUS) -> ContentSet:
    return load_content(read_folder(root), assets=list_folder_assets(root))


@pytest.fixture(scope="module")
def content() -> ContentSet:
    return load()


def as_found(content: ContentSet) -> list[Found]:
    return [(p.path, p.line, p.level, p.rule) for p in content.all_problems()]


def diff(actual: list[Found], wanted: list[Found]) -> str:
    missing = [w for w in wanted if w not in actual]
    extra = [a for a in actual if a not in wanted]
    return f"designed but not reported: {missing}\nreported but not designed: {extra}"


# -- (a) the problems are exactly the designed ones --------------------------------------


def test_expected_is_sorted_by_path_then_line() -> None:
    rows = expected()
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))
    assert {level for _, _, level, _ in rows} == {"error", "warning"}


def test_the_problems_are_exactly_the_designed_ones(content: ContentSet) -> None:
    actual, wanted = as_found(content), expected()
    assert sorted(actual) == sorted(wanted), diff(actual, wanted)
    # all_problems() is in path, then line order, as EXPECTED.txt is.
    assert [a[:2] for a in actual] == [w[:2] for w in wanted]


def test_counts_follow_from_the_design(content: ContentSet) -> None:
    wanted = expected()
    errors = [w for w in wanted if w[2] == "error"]
    assert content.checked == CHECKED
    assert content.error_count == len(errors) == 4
    assert content.warning_count == len(wanted) - len(errors) == 27
    assert content.invalid == len({w[0] for w in errors})


# -- (b) lens content validate -------------------------------------------------------------


def validate(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[Found], str]:
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["content", "validate", "."])
    *lines, last = result.output.strip().splitlines()
    printed = []
    for text in lines:
        match = _CLI_LINE.match(text)
        assert match, f"not a problem line: {text!r}"
        printed.append((match["path"], int(match["line"]), match["level"], match["rule"]))
    return result.exit_code, printed, last


def test_validate_prints_errors_then_warnings_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    code, printed, last = validate(CORPUS, monkeypatch)
    wanted = expected()
    errors = [w for w in wanted if w[2] == "error"]
    warnings = [w for w in wanted if w[2] == "warning"]
    assert [p[2] for p in printed] == ["error"] * len(errors) + ["warning"] * len(warnings)
    assert sorted(printed[: len(errors)]) == sorted(errors)
    assert sorted(printed[len(errors) :]) == sorted(warnings)
    assert last == f"Validated {CHECKED} files: 4 errors, 27 warnings"
    assert code == 1


def test_without_the_files_that_have_errors_validate_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(CORPUS, vault)
    with_errors = {path for path, _, level, _ in expected() if level == "error"}
    assert with_errors == NOT_SERVED | {BROKEN_LENS}
    for path in with_errors:
        (vault / path).unlink()
    code, printed, last = validate(vault, monkeypatch)
    # What goes with them: their own problems, the original's duplicate-id warnings, and
    # "cannot be served" for the broken lens; what comes instead: two links to files
    # that are gone (the module's lens, the course's module).
    wanted = [
        w
        for w in expected()
        if w[0] not in with_errors
        and not (w[0] == "modules/welcome.md" and w[3] == "id.duplicate")
        and w != ("modules/specification-gaming.md", 18, "warning", "link.invalid")
    ] + [
        ("modules/specification-gaming.md", 18, "warning", "link.missing"),
        ("courses/agi-safety-fundamentals.md", 26, "warning", "link.missing"),
    ]
    assert sorted(printed) == sorted(wanted), diff(printed, wanted)
    assert last == f"Validated {CHECKED - 4} files: 0 errors, 22 warnings"
    assert code == 0


# -- (c) what is served ----------------------------------------------------------------------


def test_which_modules_are_served(content: ContentSet) -> None:
    assert set(content.modules) == SERVED
    assert set(content.courses) == {"agi-safety-fundamentals", "alignment-101"}
    assert BROKEN_LENS not in content.lenses
    assert {m.dialect for m in content.modules.values()} == {1, 2}
    assert content.modules["modules/v1/reward-hacking.md"].dialect == 1
    assert content.modules["modules/v1/instrumental-goals.md"].dialect == 1


def test_editor_copies_are_served_and_ids_name_the_original(content: ContentSet) -> None:
    copy, original = "Lenses/Goodhart's law 1.md", "Lenses/Goodhart's law.md"
    assert {copy, original} <= set(content.lenses)
    assert content.ids[GOODHART_ID] == original
    lens = content.lens_by_id(GOODHART_ID)
    assert lens is not None and lens.source_path == original
    ours, theirs = lens.segments[0], content.lenses[copy].segments[0]
    assert isinstance(ours, TextSegment) and isinstance(theirs, TextSegment)
    assert "skip ahead to the four ways" in ours.content
    assert "editing this copy" in theirs.content
    for key in WELCOME_IDS:
        assert content.ids[key] == "modules/welcome.md"
    assert content.module_slugs["welcome"] == "modules/welcome.md"
    assert "modules/welcome 1.md" not in content.modules
    # A module links the original by path, and gets it.
    goals = content.modules["modules/goals-and-proxies.md"]
    assert goals.sections[1].source_path == original


def test_drafts_obsidian_and_notes_are_not_counted(content: ContentSet) -> None:
    on_disk = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and (p.suffix == ".md" or p.name.endswith(".timestamps.json"))
    }
    assert on_disk >= SKIPPED
    assert set(content.problems) == on_disk - SKIPPED
    assert len(content.problems) == content.checked == CHECKED
    assert not any(p.startswith((".obsidian/", ".trash/")) for p in read_folder(CORPUS))
    # The draft copy of the welcome module shares its ids and slug: unseen, it adds none.
    assert content.module_slugs["welcome"] == "modules/welcome.md"


def test_a_module_is_served_without_the_lens_that_cannot_be(content: ContentSet) -> None:
    module = content.modules["modules/specification-gaming.md"]
    assert [(s.kind, s.title, s.source_path) for s in module.sections] == [
        ("page", "Targets and goals", None),
        ("video", "Maximisers and satisficers", "Lenses/Maximisers and satisficers.md"),
    ]
    assert len(module.notes) == 1
    note = module.notes[0]
    assert note.startswith("# Uncategorized: > ## Lens: (line 18): ")
    assert f"{BROKEN_LENS} cannot be served" in note
    assert "'a strong optimiser always wins.' not found in articles/reward-hacking.md" in note
    assert module.id == "8263cc99-427c-49d2-aa83-a74f6126ef82"  # from `contentId:`
    others = [m for m in content.modules.values() if m.path != module.path]
    assert all(not m.notes for m in others)


def test_named_meetings_are_numbered_by_order_and_numbers_count_as_written(
    content: ContentSet,
) -> None:
    fundamentals = content.courses["agi-safety-fundamentals"]
    assert [(u.number, u.meeting, u.meeting_name) for u in fundamentals.units] == [
        (1, 1, "Introduction"),
        (2, 2, "Proxies and gaming"),
        (3, 3, None),
        (4, None, None),
    ]
    assert [[m.path for m in u.modules] for u in fundamentals.units] == [
        ["modules/welcome.md", "modules/goals-and-proxies.md"],
        [
            "modules/specification-gaming.md",
            "modules/v1/reward-hacking.md",
            "modules/reading-group.md",
        ],
        ["modules/governance-basics.md"],  # kept, to be shown as unavailable
        ["modules/next-steps.md"],
    ]
    assert [m.optional for m in fundamentals.units[1].modules] == [False, False, True]
    taster = content.courses["alignment-101"]
    assert [(u.number, u.meeting, u.meeting_name) for u in taster.units] == [
        (1, 1, None),
        (2, 2, None),
        (3, 2, None),  # `# Meeting: 2` written a second time counts as written (a warning)
    ]


def test_assets_used_are_the_embedded_images_that_exist(content: ContentSet) -> None:
    assert content.assets_used == EMBEDDED_IMAGES
    assert "articles/attachments/unused-photo.png" in list_folder_assets(CORPUS)
    page = content.modules["modules/interpretability.md"].sections[0].segments[0]
    assert isinstance(page, TextSegment)
    assert "attention-heads" not in page.content  # the missing image is left out
    assert "The picture above shows attention heads" in page.content


def test_notes_to_self_never_reach_a_reader(content: ContentSet) -> None:
    welcome = content.modules["modules/welcome.md"]
    first, second = (s.segments[0] for s in welcome.sections)
    assert isinstance(first, TextSegment) and isinstance(second, TextSegment)
    assert first.content.startswith("## Each week\nEach week you read a little")
    for shown in ("## What you need", "## Why we meet in groups", "how clever systems go wrong"):
        assert shown in first.content
    for hidden in ("Check with Sam", "short reflection", "intelligent", "TODO", "%%", "{"):
        assert hidden not in first.content
    assert second.content.endswith("\n\nBring one question you would like the group to discuss.")
    assert "@@" not in second.content and "Priya" not in second.content
    goals = content.modules["modules/goals-and-proxies.md"].sections[0].segments[0]
    assert isinstance(goals, TextSegment)
    assert "works like this. We pick a number we can see and hope" in goals.content
    v1 = content.modules["modules/v1/reward-hacking.md"]
    assert [(s.kind, s.title) for s in v1.sections] == [
        ("article", "Reward hacking in the wild"),
        ("text", "Before the meeting"),
        ("chat", "Your own example"),  # a stand-alone chat after a text
    ]
    intro = v1.sections[0].segments[0]
    assert isinstance(intro, TextSegment)
    assert intro.content == (
        "This older module reads one passage of the article slowly, then talks it through."
    )
    before = v1.sections[1].segments[0]
    assert isinstance(before, TextSegment) and "ask for two" not in before.content
    spec = content.modules["modules/specification-gaming.md"].sections[0].segments[0]
    assert isinstance(spec, TextSegment)
    assert spec.content.startswith("## The gap\n") and "\n### A note on words\n" in spec.content


def test_newer_and_older_frontmatter(content: ContentSet) -> None:
    mesa = content.modules["modules/mesa-optimisation.md"]
    assert mesa.id is None
    assert (
        mesa.tldr
        == "Training can produce a model that is itself an optimiser, with goals of its own."
    )
    assert mesa.summary_for_tutor is not None and mesa.tags == ("inner-alignment", "week-1")
    assert mesa.discussion == "https://forum.example.org/t/mesa-optimisation/42"
    assert content.slug_aliases == {"orientation": "welcome", "start-here": "welcome"}
    goodhart = content.modules["modules/goals-and-proxies.md"].sections[1].article
    assert goodhart is not None and goodhart.author == "Jordan Ellis, Sam Okafor"
    examples = content.modules["modules/goals-and-proxies.md"].sections[2].article
    assert examples is not None and examples.source_url is None


def test_clips_without_timings_and_past_the_end(content: ContentSet) -> None:
    talk = content.modules["modules/v1/instrumental-goals.md"].sections[0].segments[1]
    assert isinstance(talk, VideoExcerpt)
    assert talk.transcript.startswith("Think of any goal at all")  # the whole text
    assert talk.end_seconds is None  # `to: 1:30` has one colon: the clip runs to the end
    maximisers = content.modules["modules/specification-gaming.md"].sections[1]
    first, second = maximisers.segments[:2]
    assert isinstance(first, VideoExcerpt) and isinstance(second, VideoExcerpt)
    assert first.transcript.endswith("as long as any improvement is left. A satisficer stops")
    assert second.transcript.endswith("only as safe as the maximiser it builds.")

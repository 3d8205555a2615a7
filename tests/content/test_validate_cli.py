from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lens.cli import app
from tests.content.test_rules import repo

ROOT = Path(__file__).parents[2]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_example_course_validates_clean() -> None:
    result = CliRunner().invoke(app, ["content", "validate", str(ROOT / "examples" / "course")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "Validated 15 files: 0 errors, 0 warnings"


def test_errors_then_warnings_and_exit_1_only_for_errors(tmp_path: Path, monkeypatch) -> None:
    base = repo()
    files = repo(
        **{
            "Lenses__V.md": base["Lenses/V.md"].replace("from:: 0:01", "from: 0:01"),
            "Lenses__A.md": base["Lenses/A.md"].replace('"ends here."', '"nowhere"'),
        }
    )
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["content", "validate", "."])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Lenses/A.md:8: error: to:: anchor 'nowhere' not found in articles/a.md after from:: "
        "(in ### Article: An article > #### Article-excerpt) [anchor.missing]",
        "Lenses/V.md:7: warning: `from:` has one colon, so it is text, not a field; did you "
        "mean `from::`? (in ### Video: A video > #### Video-excerpt) [field.one-colon]",
        "modules/m.md:15: warning: Lenses/A.md cannot be served: to:: anchor 'nowhere' not "
        "found in articles/a.md after from::, so this section is left out "
        "(in # Learning Outcome: > Lenses/A.md) [link.invalid]",
        "Validated 9 files: 1 error, 2 warnings",
    ]


def test_only_warnings_exit_0(tmp_path: Path, monkeypatch) -> None:
    base = repo()
    write(
        tmp_path, repo(**{"Lenses__V.md": base["Lenses/V.md"].replace("from:: 0:01", "from: 0:01")})
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["content", "validate", "."])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "Validated 9 files: 0 errors, 1 warning"


def test_a_single_file_is_checked_within_its_repository(tmp_path: Path) -> None:
    write(tmp_path, repo())
    result = CliRunner().invoke(app, ["content", "validate", str(tmp_path / "Lenses" / "A.md")])
    assert result.exit_code == 0, result.output
    assert "Validated 1 file: 0 errors, 0 warnings" in result.output


def test_a_path_outside_any_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("hello")
    result = CliRunner().invoke(app, ["content", "validate", str(tmp_path / "note.md")])
    assert result.exit_code == 2
    assert "not inside a content repository" in result.output


def test_a_folder_selects_its_timestamps_files_too(tmp_path: Path) -> None:
    write(tmp_path, repo(**{"video_transcripts__v.timestamps.json": "not json"}))
    result = CliRunner().invoke(app, ["content", "validate", str(tmp_path / "video_transcripts")])
    assert result.exit_code == 0, result.output
    assert "v.timestamps.json:1: warning: Not valid JSON" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Validated 2 files: 0 errors,")

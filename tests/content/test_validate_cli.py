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
    assert result.output.strip().splitlines()[-1] == "Validated 15 files: 15 valid, 0 invalid"


def test_problems_are_listed_and_exit_is_1(tmp_path: Path, monkeypatch) -> None:
    files = repo(**{"Lenses__V.md": repo()["Lenses/V.md"].replace("from:: 0:01", "from: 0:01")})
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["content", "validate", "."])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == (
        "Lenses/V.md:7: ### Video: A video > #### Video-excerpt: `from:` has one colon; "
        "did you mean `from::`?"
    )
    assert lines[-1] == "Validated 9 files: 7 valid, 2 invalid"


def test_a_single_file_is_checked_within_its_repository(tmp_path: Path) -> None:
    write(tmp_path, repo())
    result = CliRunner().invoke(app, ["content", "validate", str(tmp_path / "Lenses" / "A.md")])
    assert result.exit_code == 0, result.output
    assert "Validated 1 files: 1 valid, 0 invalid" in result.output


def test_a_path_outside_any_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("hello")
    result = CliRunner().invoke(app, ["content", "validate", str(tmp_path / "note.md")])
    assert result.exit_code == 2
    assert "not inside a content repository" in result.output

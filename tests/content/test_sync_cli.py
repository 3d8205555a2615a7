from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from lens.cli import app

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"


def test_sync_then_status(tmp_path: Path, monkeypatch) -> None:
    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTENT_DIR", str(course))
    runner = CliRunner()
    first = runner.invoke(app, ["content", "sync"])
    assert first.exit_code == 0, first.output
    assert "parsing and validating 15 files" in first.output
    assert "(full): 15 files, 0 invalid" in first.output
    again = runner.invoke(app, ["content", "sync"])
    assert "nothing to do" in again.output

    (course / "modules" / "next-steps.md").write_text("---\nslug: x\n---\n# Page: P\n")
    runner.invoke(app, ["content", "sync"])
    status = runner.invoke(app, ["content", "status"])
    assert status.exit_code == 0, status.output
    assert f"source:  folder:{course}" in status.output
    assert "4 modules served, 1 invalid files" in status.output
    assert "modules/next-steps.md:1: frontmatter: Missing required field: title" in status.output


def test_sync_of_a_missing_folder_fails_cleanly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTENT_DIR", str(tmp_path / "nope"))
    result = CliRunner().invoke(app, ["content", "sync"])
    assert result.exit_code == 1
    assert "sync failed, the current content stays" in result.output
    assert "does not exist" in result.output

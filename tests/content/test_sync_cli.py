from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from lens.cli import app
from tests.content.fake_github import History

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
    assert "4 modules served, 1 files that cannot be served, 0 with warnings" in status.output
    problems = [line for line in status.output.splitlines() if "modules/next-steps.md:1:" in line]
    assert any("title" in line for line in problems), status.output


def test_sync_of_a_missing_folder_fails_cleanly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTENT_DIR", str(tmp_path / "nope"))
    result = CliRunner().invoke(app, ["content", "sync"])
    assert result.exit_code == 1
    assert "sync failed, the current content stays" in result.output
    assert "does not exist" in result.output


def test_a_push_without_content_changes_is_reported_unchanged(tmp_path: Path, monkeypatch) -> None:
    history = History(tmp_path / "repo")
    history.copy_in(EXAMPLE)
    first = history.commit("the course")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTENT_DIR", str(history.root))
    monkeypatch.setenv("LENS_CONTENT_REF", "main")
    runner = CliRunner()
    assert "(full): 15 files, 0 invalid" in runner.invoke(app, ["content", "sync"]).output

    second = history.commit("readme", write={"README.md": "# A longer introduction\n"})
    result = runner.invoke(app, ["content", "sync"])
    assert result.exit_code == 0, result.output
    assert (
        f"content unchanged at {second[:12]} (incremental read): its 15 files and 0 embedded "
        f"images are those of the current snapshot ({first[:12]}), which stays"
    ) in result.output
    status = runner.invoke(app, ["content", "status"])
    assert f"commit:  {first}" in status.output

"""`lens cohort ...` as an operator runs it (a real process, SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fixtures.cli import lens


def _add_people(db: Path, cohort_id: int) -> None:
    """Six participants and a facilitator, all free on Wednesday 18:00-20:00 UTC."""
    slots = list(range(2 * 48 + 36, 2 * 48 + 40))
    with sqlite3.connect(db) as conn:
        for n in range(7):
            user = conn.execute(
                "INSERT INTO users (nickname, email, timezone) VALUES (?, ?, 'UTC')",
                (f"Person {n}", f"p{n}@example.org"),
            ).lastrowid
            conn.execute(
                "INSERT INTO signups (cohort_id, user_id, role, status, timezone, availability,"
                " max_groups, approved_at) VALUES (?, ?, ?, 'enrolled', 'UTC', ?, 1, ?)",
                (
                    cohort_id,
                    user,
                    "facilitator" if n == 6 else "participant",
                    json.dumps({"available": slots, "if_needed": []}),
                    "2027-01-01 00:00:00" if n == 6 else None,
                ),
            )


def test_create_list_show_and_group(tmp_path: Path) -> None:
    db = tmp_path / "lens.db"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}", "LENS_VAR_DIR": str(tmp_path)}
    assert lens("content", "sync", env=env, cwd=tmp_path).returncode == 0

    base = ["cohort", "create", "--course", "intro-to-ai-safety", "--name", "Spring 2027"]
    bad = lens(*base, "--start", "2027-03-01", "--length", "45", env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "60, 90 or 120 minutes" in bad.stderr
    not_a_date = lens(*base, "--start", "March", env=env, cwd=tmp_path)
    assert not_a_date.returncode == 2 and "use YYYY-MM-DD" in not_a_date.stderr
    unknown = lens(
        "cohort", "create", "--course", "nope", "--name", "X", "--start", "2027-03-01",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert unknown.returncode == 1 and "There is no course 'nope'" in unknown.stderr
    made = lens(*base, "--start", "2027-03-01", "--min", "3", "--max", "6", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("cohort 1 created: Spring 2027")

    listed = lens("cohort", "list", env=env, cwd=tmp_path)
    assert "open" in listed.stdout and "0 participants" in listed.stdout

    _add_people(db, 1)
    grouped = lens("cohort", "group", "1", "--approve", env=env, cwd=tmp_path, timeout=120)
    assert grouped.returncode == 0, grouped.stderr
    assert "grouping 6 participants and 1 facilitators" in grouped.stderr
    assert "placed 6 of 6 participants in 1 groups" in grouped.stdout
    assert "Group 1 at slot 132 UTC: 6 participants, Person 6" in grouped.stdout
    assert "approved: cohort 1 is running" in grouped.stdout

    shown = lens("cohort", "show", "1", env=env, cwd=tmp_path)
    assert "cohort 1: Spring 2027 (intro-to-ai-safety), running" in shown.stdout
    assert "6 participant grouped" in shown.stdout and "approved groups: 1" in shown.stdout
    missing = lens("cohort", "show", "9", env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "There is no cohort 9" in missing.stderr

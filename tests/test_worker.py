"""`lens worker` (lens/worker.py), run as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.cli import ROOT


def test_worker_runs_periodic_jobs_and_stops_gracefully(tmp_path: Path) -> None:
    import sqlite3

    proc = subprocess.Popen(
        [sys.executable, "-m", "lens", "worker"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "LENS_JOB_POLL_SECONDS": "0.1"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = tmp_path / "var" / "lens.db"
    status = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status != "succeeded":
            time.sleep(0.2)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        row = conn.execute(
                            "SELECT status FROM jobs WHERE kind = 'jobs.prune'"
                        ).fetchone()
                    except sqlite3.OperationalError:
                        row = None  # migrations still running
                status = row[0] if row else None
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert status == "succeeded", output
    assert proc.returncode == 0, output
    assert "jobs.runner.stopped" in output

"""Same-run A/B of the module page's CPU cost: two Lens checkouts served side by side.

Starts one `lens serve --no-worker` process from each checkout (A and B: e.g. a
`git worktree` at the commit before a change, and the working tree) on one fresh
PostgreSQL database, then drives them in turn with `wrk -c50` (the module page, as a
visitor, or signed in with --signed-in) and reads each process's CPU time from
/proc/<pid>/stat before and after each run. CPU per request is steadier than requests/s
on a shared machine whose speed drifts: a change's effect of a few per cent shows here
when bench/reader.py's shares cannot tell it from the noise.

    git worktree add /tmp/lens-a HEAD~1
    .venv/bin/python bench/reader_ab.py --a /tmp/lens-a --b . [--rounds 4] [--seconds 6]

Prints each run, then per side the median and best microseconds of CPU per request and
the median requests/s. It measures; it sets no target and always exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PG_ADMIN = os.environ.get("LENS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
PAGE = "/course/intro-to-ai-safety/specification-gaming?s=2"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a", required=True, help="checkout A (a folder with lens/)")
    parser.add_argument("--b", required=True, help="checkout B")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--signed-in", action="store_true", help="read as a signed-in learner")
    args = parser.parse_args()
    db = f"lens_ab_{os.getpid()}"
    subprocess.run(["psql", PG_ADMIN + "/postgres", "-qc", f'CREATE DATABASE "{db}"'], check=True)
    work = Path(tempfile.mkdtemp())
    lens = str(Path(sys.executable).parent / "lens")
    env = {**os.environ, "DATABASE_URL": f"{PG_ADMIN}/{db}", "ENVIRONMENT": "production",
           "JWT_SECRET": "bench-" + "x" * 40, "FRONTEND_URL": "http://127.0.0.1"}  # fmt: skip
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        subprocess.run([lens, "db", "upgrade"], env=env, cwd=work, check=True,
                       capture_output=True)  # fmt: skip
        cookie = ""
        if args.signed_in:
            from lens.auth.sessions import issue_token

            subprocess.run(
                ["psql", env["DATABASE_URL"], "-qc",
                 "INSERT INTO users (id, nickname, email, created_at, updated_at) "
                 "VALUES (1, 'Bench Learner', 'learner@example.org', now(), now())"],
                check=True,
            )  # fmt: skip
            cookie = "session=" + issue_token(env["JWT_SECRET"], user_id=1, version=0)
        for offset, (name, root) in enumerate((("A", args.a), ("B", args.b))):
            port = 8941 + offset + (os.getpid() % 500) * 2
            proc = subprocess.Popen(
                [lens, "serve", "--no-worker", "--port", str(port)],
                env={**env, "PYTHONPATH": str(Path(root).resolve())},
                cwd=work, stdout=(work / f"{name}.log").open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            procs[name] = (proc, port)
        headers: dict[str, list[str]] = {}
        for name, (proc, port) in procs.items():
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                if proc.poll() is not None:
                    sys.exit(f"{name} stopped; see {work / (name + '.log')}")
                try:
                    if httpx.get(base + "/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            first = httpx.get(base + PAGE, headers={"Cookie": cookie} if cookie else {})
            assert first.status_code == 200, first.status_code
            reader = first.cookies.get("reader")
            headers[name] = ["-H", f"Cookie: {cookie or f'reader={reader}'}"]
            subprocess.run(["wrk", "-t2", "-c50", "-d3s", *headers[name], base + PAGE],
                           capture_output=True, check=True)  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for number in range(args.rounds):
            for name in ("A", "B") if number % 2 == 0 else ("B", "A"):
                proc, port = procs[name]
                before = cpu_seconds(proc.pid)
                out = subprocess.run(
                    ["wrk", "-t2", "-c50", f"-d{args.seconds}s", *headers[name],
                     f"http://127.0.0.1:{port}{PAGE}"],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                used = cpu_seconds(proc.pid) - before
                done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
                rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
                results[name].append((used / done * 1e6, rps))
                print(f"{name}: {results[name][-1][0]:.0f} us CPU a request, {rps:.0f} req/s")
        for name, runs in results.items():
            cpu = sorted(r[0] for r in runs)
            rps = sorted(r[1] for r in runs)
            print(f"{name} ({getattr(args, name.lower())}): median {cpu[len(cpu) // 2]:.0f} us "
                  f"(best {cpu[0]:.0f}), median {rps[len(rps) // 2]:.0f} req/s")  # fmt: skip
    finally:
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(
            ["psql", PG_ADMIN + "/postgres", "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)  # the servers' logs and var/


if __name__ == "__main__":
    main()

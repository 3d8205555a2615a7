"""Module page under concurrent load against `lens serve` on PostgreSQL.

Starts, on this machine: a fresh PostgreSQL database, `lens serve` (production settings,
one process, the bundled course) and, for comparison under the same uvicorn, a bare
FastAPI "hello" endpoint and a "floor" (FastAPI, one asyncpg query like the page's own,
the module page's bytes as the answer: what any page with a per-reader database read
costs, before Lens adds anything); then drives each with wrk (Debian package `wrk`) at
50 concurrent connections and prints requests/s and latency percentiles.

    .venv/bin/python bench/reader.py [--seconds 20] [--connections 50]

The module page is read twice: by a visitor (a `reader` cookie, no progress) and by a
learner signed in (a session, a section already done), as a live cohort reads it.

Targets: >= 300 requests/s and p99 < 100 ms at 50 concurrent clients (issue 5), and
(issue 20) >= 20 % of the bare endpoint's requests/s in the same run, for both readers,
and no event-loop stall over 50 ms while serving (LENS_LOOP_STALL_MS; BENCH_STALL_MS changes the
threshold). Exits 1 when an issue-20 target is not met. After the measured runs, a short
extra run of the module page under py-spy (when installed) prints where Lens's CPU
went; it does not change the numbers above it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _logs import stall_report  # bench/_logs.py
from _profile import Profile, machine_speed  # bench/_profile.py

ROOT = Path(__file__).resolve().parents[1]
PROFILE_LABELS = [
    ("progress query (per reader)", "read_rows (lens/db/engine.py"),
    ("template", "Template.render ("),
    ("module page handler, the rest", "module_page (lens/courses/pages.py"),
    ("FastAPI routing and dependencies", "fastapi/routing.py"),
    ("Lens's middleware", "lens/web/"),
    ("Lens's middleware", "lens/auth/"),
    # SQLAlchemy runs each statement in a greenlet of its own, apart from its request.
    ("database: SQLAlchemy and asyncpg", "sqlalchemy/"),
    ("database: SQLAlchemy and asyncpg", "asyncpg/"),
    ("uvicorn: HTTP parsing and writing", "httptools_impl.py"),
    ("logging", "logging/__init__.py"),
]
STALL_MS = int(os.environ.get("BENCH_STALL_MS", "50"))
PG_ADMIN = os.environ.get("LENS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MODULE_PATH = "/course/intro-to-ai-safety/specification-gaming?s=2"
FLOOR_MODULE_KEY = "specification-gaming"  # what the floor's query asks (any key will do)

HELLO_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}
    """
)
# The floor for any page that reads per-reader state from the database: the same server,
# one asyncpg query on a pool (the page's progress query, same database), and the module
# page's own bytes (as Lens sent them) as the answer. Nothing Lens adds: no middleware,
# dependencies, ORM or template.
FLOOR_APP = textwrap.dedent(
    """
    import os
    from contextlib import asynccontextmanager
    import asyncpg
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    BODY = open(os.environ["FLOOR_BODY"], "rb").read()
    QUERY = (
        "SELECT module_key, content_id, completed_at FROM progress"
        " WHERE actor = $1 AND module_key = $2"
    )

    @asynccontextmanager
    async def lifespan(app):
        app.state.pool = await asyncpg.create_pool(os.environ["FLOOR_DSN"], min_size=20,
                                                   max_size=20)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/floor")
    async def floor(request: Request) -> Response:
        rows = await request.app.state.pool.fetch(QUERY, request.cookies.get("reader", ""),
                                                  os.environ["FLOOR_KEY"])
        return Response(BODY + b"<!-- %d -->" % len(rows), media_type="text/html")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn_app(
    module: str, port: int, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`module.py`'s `app` (in `cwd`) under uvicorn, as the baselines run."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited while starting ({url})")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds}s")


def wrk(url: str, *, seconds: int, connections: int, headers: list[str]) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    result = {"rps": rps}
    for pct in ("50", "90", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        result[f"p{pct}"] = float(value) * factor
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def rounds(runs: dict[str, Any], *, seconds: int, count: int) -> dict[str, dict[str, float]]:
    """Each of `runs` (name -> a function taking seconds, giving a `wrk` result) in turn,
    `count` times, `seconds / count` each: on a machine whose speed drifts (a shared VM),
    every endpoint then sees the same drift. Requests/s is the mean over the rounds;
    p50 and p90 the median round's, p99 the worst round's; errors summed."""
    per = max(1, round(seconds / count))
    got: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(count):
        for name, run in runs.items():
            got[name].append(run(per))
    merged = {}
    for name, results in got.items():
        middle = sorted(results, key=lambda r: r["p50"])[len(results) // 2]
        merged[name] = {
            "rps": sum(r["rps"] for r in results) / len(results),
            "p50": middle["p50"],
            "p90": middle["p90"],
            "p99": max(r["p99"] for r in results),
            "errors": sum(r["errors"] for r in results),
        }
    return merged


def sign_in_a_learner(env: dict[str, str], base: str) -> str:
    """A learner with an account, signed in, who has finished the page's section before:
    the Cookie header a live cohort's readers send (a session and their own progress)."""
    from lens.auth.sessions import issue_token

    subprocess.run(
        ["psql", env["DATABASE_URL"], "-qc",
         "INSERT INTO users (nickname, email, created_at, updated_at) "
         "VALUES ('Bench Learner', 'learner@example.org', now(), now())"],
        check=True,
    )  # fmt: skip
    found = subprocess.run(
        ["psql", env["DATABASE_URL"], "-tAc",
         "SELECT id FROM users WHERE email = 'learner@example.org'"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    token = issue_token(env["JWT_SECRET"], user_id=int(found.stdout.strip()), version=0)
    cookie = f"session={token}"
    page = httpx.get(base + MODULE_PATH, headers={"Cookie": cookie})
    assert page.status_code == 200 and "Bench Learner" in page.text, page.status_code
    content_id = re.search(r'name="content_id" value="([^"]+)"', page.text)
    assert content_id is not None
    done = httpx.post(
        base + MODULE_PATH.split("?")[0] + "/complete",
        data={"content_id": content_id.group(1), "s": "2"},
        headers={"Cookie": cookie, "Origin": env["FRONTEND_URL"]},
    )
    assert done.status_code == 303, done.status_code
    assert 'aria-label="done"' in httpx.get(base + MODULE_PATH, headers={"Cookie": cookie}).text
    return cookie


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved rounds the seconds are split into"
    )
    parser.add_argument("--workers", type=int, default=1, help="lens serve --workers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    db = f"lens_bench_{os.getpid()}"
    subprocess.run(["psql", PG_ADMIN + "/postgres", "-qc", f'CREATE DATABASE "{db}"'], check=True)
    work = Path(tempfile.mkdtemp())
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_ADMIN}/{db}",
        "ENVIRONMENT": "production",
        "JWT_SECRET": "bench-" + "x" * 40,
        "FRONTEND_URL": "http://127.0.0.1",
        "LENS_LOG_LEVEL": os.environ.get("LENS_LOG_LEVEL", "INFO"),
        # Report any event-loop stall (what held the loop, and for how long).
        "LENS_LOOP_STALL_MS": str(STALL_MS),
    }
    lens_bin = str(Path(sys.executable).parent / "lens")
    procs: list[subprocess.Popen[bytes]] = []
    failed = True
    try:
        subprocess.run([lens_bin, "db", "upgrade"], env=env, cwd=work, check=True)
        port = free_port()
        log = (work / "serve.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    lens_bin,
                    "serve",
                    "--no-worker",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                env=env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/readyz", procs[-1])
        serving_from = (work / "serve.log").stat().st_size  # stalls counted from here
        first = httpx.get(base + MODULE_PATH)
        assert first.status_code == 200, first.status_code
        cookie = first.cookies.get("reader")
        signed_in = sign_in_a_learner(env, base)
        (work / "hello.py").write_text(HELLO_APP)
        hello_port = free_port()
        procs.append(uvicorn_app("hello", hello_port, work))
        wait_ready(f"http://127.0.0.1:{hello_port}/hello", procs[-1])
        (work / "floor.py").write_text(FLOOR_APP)
        (work / "page.html").write_bytes(first.content)
        floor_port = free_port()
        floor_env = {"FLOOR_DSN": f"{PG_ADMIN}/{db}", "FLOOR_BODY": str(work / "page.html"),
                     "FLOOR_KEY": FLOOR_MODULE_KEY}  # fmt: skip
        procs.append(uvicorn_app("floor", floor_port, work, env=floor_env))
        wait_ready(f"http://127.0.0.1:{floor_port}/floor", procs[-1])

        wrk(base + MODULE_PATH, seconds=3, connections=args.connections, headers=[])  # warm-up
        measured = rounds(
            {
                "module": lambda t: wrk(base + MODULE_PATH, seconds=t,
                                        connections=args.connections,
                                        headers=[f"Cookie: reader={cookie}"]),
                "learner": lambda t: wrk(base + MODULE_PATH, seconds=t,
                                         connections=args.connections,
                                         headers=[f"Cookie: {signed_in}"]),
                "hello": lambda t: wrk(f"http://127.0.0.1:{hello_port}/hello", seconds=t,
                                       connections=args.connections, headers=[]),
                "floor": lambda t: wrk(f"http://127.0.0.1:{floor_port}/floor", seconds=t,
                                       connections=args.connections,
                                       headers=[f"Cookie: reader={cookie}"]),
            },
            seconds=args.seconds,
            count=args.rounds,
        )  # fmt: skip
        module, learner = measured["module"], measured["learner"]
        hello, floor = measured["hello"], measured["floor"]
        cores = os.cpu_count()
        print(
            f"machine: {cores} cores ({machine_speed()}); {args.connections} connections, "
            f"{args.seconds} s each, "
            f"in {args.rounds} interleaved rounds; lens serve --workers {args.workers}"
        )
        for name, r in (
            ("module page (lens serve)", module),
            ("  the same, signed in", learner),
            ("bare FastAPI hello", hello),
            ("floor: 1 query + page bytes", floor),
        ):
            print(
                f"{name:26} {r['rps']:8.0f} req/s   p50 {r['p50']:6.1f} ms   "
                f"p90 {r['p90']:6.1f} ms   p99 {r['p99']:6.1f} ms   non-2xx {int(r['errors'])}"
            )
        verdict = module["rps"] >= 300 and module["p99"] < 100
        print(f"targets (>= 300 req/s, p99 < 100 ms): {'met' if verdict else 'NOT met'}")
        met = True
        for who, r in (("a visitor", module), ("signed in", learner)):
            share = r["rps"] / max(hello["rps"], 1e-9)
            ok = share >= 0.20 and r["p99"] < 100 and not r["errors"]
            met = met and ok
            print(
                f"target (issue 20: >= 20 % of the bare endpoint, p99 < 100 ms), {who}: "
                f"{share:.1%} of it, p99 {r['p99']:.1f} ms: {'met' if ok else 'NOT met'}"
            )
        print(
            f"the floor (FastAPI, one asyncpg query, the page's bytes) is "
            f"{floor['rps'] / max(hello['rps'], 1e-9):.1%} of the bare endpoint; Lens's "
            f"module page is {module['rps'] / max(floor['rps'], 1e-9):.1%} of the floor"
        )
        with (work / "serve.log").open(errors="replace") as logged:
            logged.seek(serving_from)
            report, no_stalls = stall_report(logged.read(), STALL_MS)
        print(report)
        failed = not (met and no_stalls)
        if args.workers == 1:
            profile = Profile(procs[0].pid, work / "reader.spy")
            wrk(
                base + MODULE_PATH,
                seconds=5,
                connections=args.connections,
                headers=[f"Cookie: reader={cookie}"],
            )
            print("where Lens's CPU went (a separate 5 s run under py-spy, GIL held):")
            for line in profile.summary(PROFILE_LABELS):
                print("  " + line)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(
            ["psql", PG_ADMIN + "/postgres", "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

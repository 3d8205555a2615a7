"""The tutor's added time to first token, and 200 concurrent conversations on one process.

Starts, on this machine: a fake OpenAI-compatible provider (bench/_fake_llm.py, its own
process: a fixed delay before the first token, then N tokens a fixed delay apart) and
`lens serve --no-worker --no-bot` (one process, the bundled example course, a fresh
database) whose LLM_PROVIDER points at it. Then, with the same request pattern, it calls
the provider directly and through Lens's `POST /api/tutor/messages`, and measures the
time to first token (first content chunk directly; first `delta` event through Lens):

1. sequential: --sequential requests one at a time (direct and Lens alternating);
2. concurrent: --concurrent streaming conversations that all start together, first
   directly, then through Lens. Every stream must end with `done` and the whole reply.

Each simulated student is its own visitor (own connection and `reader` cookie, taken
from loading the module page first, untimed) on a home network of their own (its own
`X-Forwarded-For` address, which Lens believes from 127.0.0.1 here), as learners in a live
session are, so per-person and per-network limits never collide; the limits are raised
anyway. The direct requests send the provider the exact body Lens
sent it (system prompt and all). Lens's memory (VmRSS of its process tree, sampled every
20 ms, and the kernel's VmHWM) is watched throughout.

    .venv/bin/python bench/tutor.py                     # SQLite temp file
    .venv/bin/python bench/tutor.py --url postgresql://postgres@127.0.0.1:5432
        # a fresh database is created on that server (and dropped afterwards);
        # Lens then runs with ENVIRONMENT=production, as deployed

Targets: added time to first token < 15 ms at p50 one at a time, no errors; and (issue
20) with 200 streams started together the added time to first token < 100 ms at p99,
Lens's CPU < 10 ms per exchange, the provider seeing all 200 at once, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from lens.content.parsed import ChatSegment
from lens.content.parsing import load_content
from lens.content.sources import BUNDLED_COURSE, read_folder
from lens.courses.service import course_modules

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _logs import problems as logged_problems  # bench/_logs.py
from _logs import stall_report
from _profile import Profile, machine_speed  # bench/_profile.py

FAKE = Path(__file__).resolve().parent / "_fake_llm.py"
API_KEY = "sk-bench"
MODEL = "openai/bench-tutor"
STALL_MS = 50
# Where a sample of Lens's CPU was, first match from the outside of its stack in.
PROFILE_LABELS = [
    ("a reply streaming (provider -> Lens -> learner)", "send.<locals>.events"),
    ("POST /api/tutor/messages (limits, conversation, hold)", "send (lens/tutor/api.py"),
    ("saving a reply (after its stream)", "_store_reply (lens/tutor/service.py"),
    ("GET /api/tutor/history (the bench's check)", "history (lens/tutor/api.py"),
    ("module page (each learner's visit)", "module_page (lens/courses/pages.py"),
    # SQLAlchemy runs each statement in a greenlet of its own: its samples do not show
    # which request they served.
    ("database: SQLAlchemy and the driver (any request)", "sqlalchemy/"),
    ("database: SQLAlchemy and the driver (any request)", "asyncpg/"),
    ("database: SQLAlchemy and the driver (any request)", "aiosqlite/"),
    ("HTTP client to the provider (httpx, httpcore)", "httpcore/"),
    ("anyio (task groups, cancel scopes)", "anyio/"),
    ("uvicorn: HTTP parsing and writing", "httptools_impl.py"),
    ("logging", "logging/__init__.py"),
]
QUESTION = "Why would a system game its specification?"
TARGET_ADDED_P50_MS = 15.0
# Issue 20 (a whole cohort at once), with --concurrent 200:
TARGET_ADDED_P99_CONCURRENT_MS = 100.0
TARGET_CPU_MS = 10.0  # Lens CPU per exchange in the concurrent phase
TARGET_PEAK_MB = 300.0


# -- the course --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chat:
    page: str  # the module page a student opens first
    at: dict[str, Any]  # course, module, section (1-based), segment (0-based)


def find_chat() -> Chat:
    """The first chat segment of the bundled example course."""
    content = load_content(read_folder(BUNDLED_COURSE))
    for course in content.courses.values():
        for _, module in course_modules(content, course):
            for s, section in enumerate(module.sections):
                for g, segment in enumerate(section.segments):
                    if isinstance(segment, ChatSegment):
                        return Chat(
                            page=f"/course/{course.slug}/{module.slug}?s={s + 1}",
                            at={
                                "course": course.slug,
                                "module": module.slug,
                                "section": s + 1,
                                "segment": g,
                            },
                        )
    sys.exit("the bundled course has no chat segment")


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate for 127.0.0.1 signed by it, as a
    vendor's API has (a chain of two; ECDSA P-256, as the vendors' own): (the authority's
    certificate, the server's chain, its key), as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("bench CA", ca_key, "bench CA", ca_key, True)
    server = certificate("bench provider", key, "bench CA", ca_key, False)
    pem = serialization.Encoding.PEM
    ca_file, chain_file, key_file = folder / "ca.pem", folder / "chain.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(pem))
    chain_file.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, chain_file, key_file


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited while starting ({url}); see {log}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {seconds}s")


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (uvicorn --workers would fork children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far."""
    ticks = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class MemoryWatch(threading.Thread):
    """Samples the VmRSS of a process tree every 20 ms (a thread: never waits on the
    bench's busy event loop)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.samples = 0
        self._halt = threading.Event()

    def now_kb(self) -> int:
        return sum(_status_kb(p, "VmRSS") for p in _tree(self.pid))

    def cpu_seconds(self) -> float:
        return cpu_seconds(_tree(self.pid))

    def hwm_kb(self) -> int:
        return sum(_status_kb(p, "VmHWM") for p in _tree(self.pid))

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_kb = max(self.peak_kb, self.now_kb())
            self.samples += 1
            self._halt.wait(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# -- one streamed exchange ---------------------------------------------------------------


@dataclass
class Result:
    ttft: float | None = None  # seconds from sending the request to the first token
    total: float | None = None  # seconds to the end of the stream
    error: str | None = None
    first_at: float | None = None  # time.monotonic() when the first token arrived


class Student:
    """One visitor of the Lens site: own connection, own `reader` cookie."""

    addresses = 0

    def __init__(self, base: str, chat: Chat, reply: str) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=120)
        self.chat = chat
        self.reply = reply
        Student.addresses += 1
        n = Student.addresses
        # Each learner on a network of their own (10.x.y.z), as at home.
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        self.headers = {"Origin": base, "X-Forwarded-For": address}

    async def visit(self) -> None:
        page = await self.client.get(self.chat.page, headers=self.headers)
        page.raise_for_status()
        cookie = page.cookies.get("reader")
        assert cookie, "the module page set no reader cookie"
        # In production the cookie is Secure and would not go back over http://; send it
        # by hand (and keep the jar out of it).
        self.headers["Cookie"] = f"reader={cookie}"
        self.client.cookies.clear()

    async def ask(self, text: str) -> Result:
        result = Result()
        got, done, event = "", False, ""
        started = time.perf_counter()
        try:
            async with self.client.stream(
                "POST",
                "/api/tutor/messages",
                json={**self.chat.at, "message": text},
                headers=self.headers,
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    result.error = f"HTTP {response.status_code}: {response.text[:200]}"
                    return result
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        if event == "delta":
                            if result.ttft is None:
                                result.ttft = time.perf_counter() - started
                                result.first_at = time.monotonic()
                            got += data["text"]
                        elif event == "done":
                            done = True
                        elif event == "error":
                            result.error = f"error event: {data.get('message')}"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            return result
        result.total = time.perf_counter() - started
        if result.error is None and not done:
            result.error = "stream ended without a done event"
        elif result.error is None and got != self.reply:
            result.error = f"reply arrived changed ({len(got)} of {len(self.reply)} chars)"
        return result

    async def history_ok(self) -> bool:
        response = await self.client.get(
            "/api/tutor/history", params=self.chat.at, headers=self.headers
        )
        messages = response.json()["messages"]
        return [(m["role"], m["status"]) for m in messages[-2:]] == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]

    async def close(self) -> None:
        await self.client.aclose()


class DirectCaller:
    """The same exchange straight against the provider, as Lens's own client would."""

    def __init__(self, base: str, body: dict[str, Any], reply: str) -> None:
        self.client = httpx.AsyncClient(base_url=base, timeout=120)
        self.body = body
        self.reply = reply
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    async def visit(self) -> None:
        (await self.client.get("/health")).raise_for_status()  # open the connection

    async def ask(self, text: str) -> Result:
        result = Result()
        got, done = "", False
        started = time.perf_counter()
        try:
            async with self.client.stream(
                "POST", "/v1/chat/completions", json=self.body, headers=self.headers
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    result.error = f"HTTP {response.status_code}"
                    return result
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        done = True
                        continue
                    for choice in json.loads(line[6:]).get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            if result.ttft is None:
                                result.ttft = time.perf_counter() - started
                                result.first_at = time.monotonic()
                            got += piece
        except (httpx.HTTPError, OSError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            return result
        result.total = time.perf_counter() - started
        if not done:
            result.error = "stream ended without [DONE]"
        elif got != self.reply:
            result.error = "reply arrived changed"
        return result

    async def close(self) -> None:
        await self.client.aclose()


Caller = Student | DirectCaller


# -- phases ------------------------------------------------------------------------------


async def _prepared(make: Callable[[], Caller], n: int) -> list[Caller]:
    callers = [make() for _ in range(n)]
    gate = asyncio.Semaphore(20)

    async def visit(c: Caller) -> None:
        async with gate:
            await c.visit()

    await asyncio.gather(*(visit(c) for c in callers))
    return callers


async def once(make: Callable[[], Caller]) -> Result:
    """One exchange by a new caller (connected first, untimed)."""
    caller = (await _prepared(make, 1))[0]
    try:
        return await caller.ask(QUESTION)
    finally:
        await caller.close()


async def sequential(
    make_lens: Callable[[], Student], make_direct: Callable[[], DirectCaller], n: int
) -> tuple[list[Result], list[Result]]:
    """n exchanges one at a time, direct and through Lens alternating (so drift in the
    machine's speed falls on both alike); every Lens exchange is a new student."""
    lens_results, direct_results = [], []
    direct = await _prepared(make_direct, 1)
    for _ in range(n):
        direct_results.append(await direct[0].ask(QUESTION))
        lens_results.append(await once(make_lens))
    await direct[0].close()
    return lens_results, direct_results


async def concurrent(
    make: Callable[[], Caller], n: int, *, on_start: Callable[[], None] | None = None
) -> tuple[list[Result], float, list[bool], float]:
    """n exchanges started together (each its own caller, connected beforehand);
    `on_start` is called just before they are let go. Also returns when they were let go
    (time.monotonic())."""
    callers = await _prepared(make, n)
    start = asyncio.Event()

    async def one(c: Caller) -> Result:
        await start.wait()
        return await c.ask(QUESTION)

    tasks = [asyncio.create_task(one(c)) for c in callers]
    await asyncio.sleep(0.2)  # every task is parked at the gate
    if on_start is not None:
        on_start()
    began = time.perf_counter()
    let_go_at = time.monotonic()
    start.set()
    results = list(await asyncio.gather(*tasks))
    wall = time.perf_counter() - began
    stored: list[bool] = []
    if isinstance(callers[0], Student):
        gate = asyncio.Semaphore(20)

        async def check(c: Student) -> bool:
            async with gate:
                try:
                    return await c.history_ok()
                except (httpx.HTTPError, ValueError, KeyError):
                    return False

        stored = list(await asyncio.gather(*(check(c) for c in callers)))  # type: ignore[arg-type]
    await asyncio.gather(*(c.close() for c in callers))
    return results, wall, stored, let_go_at


# -- reporting ---------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


@dataclass
class Summary:
    n: int
    errors: int
    p50: float  # ms
    p99: float
    mean_total: float  # ms to the end of the stream
    first_errors: list[str]


def summarise(results: list[Result]) -> Summary:
    ok = [r for r in results if r.error is None and r.ttft is not None]
    ttfts = [r.ttft * 1000 for r in ok if r.ttft is not None] or [float("nan")]
    totals = [r.total * 1000 for r in ok if r.total is not None] or [float("nan")]
    errors = [r.error or "no token" for r in results if r.error is not None or r.ttft is None]
    return Summary(
        n=len(results),
        errors=len(errors),
        p50=pct(ttfts, 50),
        p99=pct(ttfts, 99),
        mean_total=statistics.fmean(totals),
        first_errors=sorted(set(errors))[:5],
    )


def timeline(stats: dict[str, Any], results: list[Result], let_go_at: float) -> str:
    """When the requests reached the provider, when it sent each first token, and when
    the learners had it: where the added time to first token is spent, before the
    provider or on the way back."""

    def spread(times: list[float]) -> str:
        if not times:
            return "-"
        ms = sorted(1000 * (t - let_go_at) for t in times)
        return f"{pct(ms, 50):4.0f} / {ms[-1]:4.0f}"

    got = [r.first_at for r in results if r.first_at is not None]
    return (
        f"at the provider {spread(stats.get('arrived', []))}   first token sent "
        f"{spread(stats.get('first_sent', []))}   received {spread(got)}"
    )


def row(name: str, s: Summary) -> str:
    return (
        f"  {name:34} n={s.n:<4} errors={s.errors:<3} TTFT p50 {s.p50:8.1f} ms   "
        f"p99 {s.p99:8.1f} ms   whole reply (mean) {s.mean_total:8.1f} ms"
    )


# -- main --------------------------------------------------------------------------------


def _pg_database(url: str) -> tuple[str, str, str]:
    """(admin URL for psql, new database name, its URL for Lens)."""
    parts = urlsplit(url)
    admin = urlunsplit((parts.scheme.split("+")[0], parts.netloc, "/postgres", "", ""))
    name = f"lens_bench_tutor_{os.getpid()}"
    return admin, name, urlunsplit(("postgresql", parts.netloc, f"/{name}", "", ""))


async def run(
    args: argparse.Namespace, lens_base: str, fake_base: str, pid: int, fake_pid: int
) -> int:
    chat = find_chat()
    async with httpx.AsyncClient(base_url=fake_base) as fake:
        reply = (await fake.get("/health")).json()["reply"]
    watch = MemoryWatch(pid)
    baseline_mb = watch.now_kb() / 1024
    watch.start()
    ours = [pid, fake_pid, os.getpid()]
    busy0, ours0, load0 = machine_busy_seconds(), cpu_seconds(ours), os.getloadavg()[0]
    run_started = time.perf_counter()

    def make_lens() -> Student:
        return Student(lens_base, chat, reply)

    # Warm-up: the first exchange imports litellm (seconds); a few more fill the caches.
    t0 = time.perf_counter()
    warm = [await once(make_lens) for _ in range(args.warmup)]
    warm_errors = [r.error for r in warm if r.error]
    if warm_errors:
        print(f"warm-up failed: {warm_errors[0]}")
        return 1
    async with httpx.AsyncClient(base_url=fake_base) as fake:
        body = (await fake.get("/last-request")).json()
    print(
        f"warm-up: {args.warmup} exchanges through Lens in {time.perf_counter() - t0:.1f} s "
        f"(first one {warm[0].ttft or 0:.2f} s to first token)"
    )
    warm_mb = watch.now_kb() / 1024

    def make_direct() -> DirectCaller:
        return DirectCaller(fake_base, body, reply)

    for _ in range(args.warmup):
        await once(make_direct)

    cpu0 = watch.cpu_seconds()
    seq_lens, seq_direct = await sequential(make_lens, make_direct, args.sequential)
    after_seq_mb = watch.now_kb() / 1024
    cpu_seq = watch.cpu_seconds() - cpu0

    async def provider_stats(reset: bool = False) -> dict[str, int]:
        async with httpx.AsyncClient(base_url=fake_base) as fake:
            stats: dict[str, int] = (await fake.get(f"/stats?reset={int(reset)}")).json()
            return stats

    before = await provider_stats(reset=True)
    con_direct, wall_direct, _, direct_at = await concurrent(make_direct, args.concurrent)
    after_direct = await provider_stats(reset=True)
    # From the moment the 200 are let go (each learner's visit to the module page, which
    # gave them their cookie, is before it): the POSTs, the streams, and the history
    # checks after them.
    started: dict[str, Any] = {}

    def let_go() -> None:
        started["cpu"] = watch.cpu_seconds()
        started["profile"] = Profile(
            pid, Path(tempfile.gettempdir()) / f"lens-bench-tutor-{pid}.spy"
        )

    con_lens, wall_lens, stored, lens_at = await concurrent(
        make_lens, args.concurrent, on_start=let_go
    )
    cpu_con = watch.cpu_seconds() - started["cpu"]
    profiled = started["profile"].summary(PROFILE_LABELS)
    after_lens = await provider_stats()
    watch.stop()
    # CPU other processes took during the run: this bench needs the machine to itself.
    others = (machine_busy_seconds() - busy0) - (cpu_seconds(ours) - ours0)
    others_cores = others / (time.perf_counter() - run_started)
    peak_mb = max(watch.peak_kb, watch.hwm_kb()) / 1024

    s_seq_l, s_seq_d = summarise(seq_lens), summarise(seq_direct)
    s_con_l, s_con_d = summarise(con_lens), summarise(con_direct)
    added = {
        "sequential": (s_seq_l.p50 - s_seq_d.p50, s_seq_l.p99 - s_seq_d.p99),
        "concurrent": (s_con_l.p50 - s_con_d.p50, s_con_l.p99 - s_con_d.p99),
    }
    lens_requests = after_lens["requests"] - after_direct["requests"]
    not_stored = sum(1 for ok in stored if not ok)
    errors = s_con_l.errors + s_seq_l.errors + not_stored

    print()
    print(
        f"machine: {os.cpu_count()} cores ({machine_speed()}), Python "
        f"{sys.version.split()[0]}; database "
        f"{args.db_label}; provider: first token after {args.first_token_delay * 1000:.0f} ms, "
        f"{args.tokens} tokens {args.token_delay * 1000:.0f} ms apart"
        + (", over HTTPS" if args.tls else "")
    )
    print(f"sequential ({args.sequential} exchanges, one at a time):")
    print(row("direct to provider", s_seq_d))
    print(row("through Lens", s_seq_l))
    print(f"  {'added by Lens':34} TTFT p50 {added['sequential'][0]:+8.1f} ms   "
          f"p99 {added['sequential'][1]:+8.1f} ms")  # fmt: skip
    print(f"  Lens CPU: {cpu_seq * 1000 / max(1, args.sequential):.1f} ms per exchange "
          "(module page, POST, stream)")  # fmt: skip
    print(f"concurrent ({args.concurrent} streams started together):")
    print(row("direct to provider", s_con_d) + f"   wall {wall_direct:.2f} s")
    print(row("through Lens", s_con_l) + f"   wall {wall_lens:.2f} s")
    print(f"  {'added by Lens':34} TTFT p50 {added['concurrent'][0]:+8.1f} ms   "
          f"p99 {added['concurrent'][1]:+8.1f} ms")  # fmt: skip
    print(
        f"  provider saw {lens_requests} requests from Lens, peak "
        f"{after_lens['peak_active']} concurrent streams (direct phase: peak "
        f"{after_direct['peak_active']}, {after_direct['requests'] - before['requests']} "
        f"requests); {not_stored} Lens replies missing from the stored history"
    )
    print(
        f"  the provider got the {args.concurrent} requests within "
        f"{after_lens.get('arrival_spread_ms', 0)} ms of each other through Lens, "
        f"{after_direct.get('arrival_spread_ms', 0)} ms directly"
    )
    print("  timeline, ms after the let-go (median / last):")
    for name, stats, results, at in (
        ("directly", after_direct, con_direct, direct_at),
        ("through Lens", after_lens, con_lens, lens_at),
    ):
        print(f"    {name:13} {timeline(stats, results, at)}")
    print(
        f"  Lens CPU: {cpu_con:.1f} s in the phase ({cpu_con / max(wall_lens, 1e-9):.0%} of one "
        f"core over its {wall_lens:.1f} s); {cpu_con * 1000 / max(1, args.concurrent):.1f} ms "
        "per exchange (POST, stream, history check)"
    )
    print(
        f"Lens memory (RSS, process tree): {baseline_mb:.0f} MB at start, {warm_mb:.0f} MB "
        f"after warm-up, {after_seq_mb:.0f} MB after the sequential phase, peak "
        f"{peak_mb:.0f} MB ({watch.samples} samples + VmHWM)"
    )
    for name, s in (("sequential", s_seq_l), ("concurrent", s_con_l)):
        for e in s.first_errors:
            print(f"  {name} error: {e}")

    print(
        f"other processes on this machine: {others:.0f} CPU-seconds during the run, "
        f"{others_cores:.2f} of a core on average (load average {load0:.2f} at the start)"
        + ("  <- NOT idle: the numbers are unreliable" if others_cores > 0.25 else "")
    )
    checks = [
        (f"added TTFT p50 < {TARGET_ADDED_P50_MS:.0f} ms (sequential)",
         added["sequential"][0] < TARGET_ADDED_P50_MS, f"{added['sequential'][0]:+.1f} ms"),
        (f"no errors ({args.concurrent} concurrent + sequential)", errors == 0,
         f"{errors} errors"),
        (f"peak RSS < {TARGET_PEAK_MB:.0f} MB", peak_mb < TARGET_PEAK_MB, f"{peak_mb:.0f} MB"),
        (f"added TTFT p99 < {TARGET_ADDED_P99_CONCURRENT_MS:.0f} ms ({args.concurrent} at once)",
         added["concurrent"][1] < TARGET_ADDED_P99_CONCURRENT_MS,
         f"{added['concurrent'][1]:+.1f} ms"),
        (f"Lens CPU < {TARGET_CPU_MS:.0f} ms per exchange ({args.concurrent} at once)",
         cpu_con * 1000 / max(1, args.concurrent) < TARGET_CPU_MS,
         f"{cpu_con * 1000 / max(1, args.concurrent):.1f} ms"),
        (f"the provider sees all {args.concurrent} streams at once",
         after_lens["peak_active"] >= args.concurrent, f"peak {after_lens['peak_active']}"),
    ]  # fmt: skip
    print(f"where Lens's CPU went in the {args.concurrent}-at-once phase (py-spy, GIL held):")
    for line in profiled:
        print("  " + line)
    print("targets:")
    for name, met, value in checks:
        print(f"  {'met    ' if met else 'NOT met'}  {name:48} {value}")
    return 0 if all(met for _, met, _ in checks) else 1


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    # uvloop, as under uvicorn: the client's own overhead should be small next to Lens's.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="PostgreSQL server URL (default: a temp SQLite file)")
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--first-token-delay", type=float, default=0.2, help="seconds")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per reply")
    parser.add_argument(
        "--model",
        default=MODEL,
        help=f"LLM_PROVIDER for Lens (default {MODEL}: Lens's own OpenAI route; "
        "hosted_vllm/bench-tutor goes through litellm instead, for a same-machine "
        "comparison)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the provider over HTTPS (a two-certificate chain, as a vendor's): each new "
        "connection Lens opens to it then costs a TLS handshake, as in production",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run Lens under cProfile and write its stats here (slows Lens: for finding "
        "where time goes, not for the numbers)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lens-bench-tutor-"))
    procs: list[subprocess.Popen[bytes]] = []
    pg: tuple[str, str, str] | None = None
    code = 1
    try:
        fake_port, lens_port = free_port(), free_port()
        fake_log = work / "fake.log"
        fake = [sys.executable, str(FAKE), "--port", str(fake_port),
                "--first-token-delay", str(args.first_token_delay),
                "--token-delay", str(args.token_delay), "--tokens", str(args.tokens)]  # fmt: skip
        scheme = "http"
        if args.tls:
            ca_file, chain_file, key_file = tls_files(work)
            fake += ["--tls-cert", str(chain_file), "--tls-key", str(key_file)]
            # Trusted by this script's clients and by Lens (httpx's SSL context reads it).
            os.environ["SSL_CERT_FILE"] = str(ca_file)
            scheme = "https"
        procs.append(subprocess.Popen(fake, stdout=fake_log.open("wb"), stderr=subprocess.STDOUT))
        fake_base = f"{scheme}://127.0.0.1:{fake_port}"
        wait_ready(fake_base + "/health", procs[-1], fake_log)

        env = {
            **os.environ,
            "JWT_SECRET": "bench-" + "x" * 40,
            "FRONTEND_URL": "http://127.0.0.1",
            "LENS_VAR_DIR": str(work / "var"),
            "LENS_LOG_LEVEL": os.environ.get("LENS_LOG_LEVEL", "INFO"),
            "LLM_PROVIDER": args.model,
            "LENS_LLM_API_BASE": fake_base + "/v1",
            "OPENAI_API_KEY": API_KEY,
            # The bench is one site with many students: no per-person limit may bite.
            "LENS_TUTOR_MESSAGES_PER_MINUTE": "100000",
            "LENS_TUTOR_DAILY_TOKENS": "1000000000",
            "LENS_TUTOR_DAILY_COST_CAP_USD": "1000000",
            # Each visitor says (X-Forwarded-For) which network it comes from.
            "LENS_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE": "100000",
            "LENS_TUTOR_NETWORK_DAILY_TOKENS": "1000000000",
            "LENS_TUTOR_MAX_TOKENS": "1024",
            # Report any event-loop stall (what held the loop, and for how long).
            "LENS_LOOP_STALL_MS": str(STALL_MS),
        }
        for name in ("CONTENT_DIR", "CONTENT_REPO", "LENS_LLM_FALLBACK", "SENTRY_DSN"):
            env.pop(name, None)
        if args.url:
            pg = _pg_database(args.url)
            subprocess.run(["psql", pg[0], "-qc", f'CREATE DATABASE "{pg[1]}"'], check=True)
            env |= {"DATABASE_URL": pg[2], "ENVIRONMENT": "production"}
            args.db_label = f"PostgreSQL ({urlsplit(args.url).netloc})"
        else:
            env |= {"DATABASE_URL": f"sqlite:///{work}/lens.db", "ENVIRONMENT": "development"}
            args.db_label = "SQLite (temp file)"
        lens_bin = str(Path(sys.executable).parent / "lens")
        subprocess.run([lens_bin, "db", "upgrade"], env=env, cwd=work, check=True)
        serve_log = work / "serve.log"
        serve = [lens_bin, "serve", "--no-worker", "--no-bot", "--port", str(lens_port)]
        if args.profile:
            serve = [sys.executable, "-m", "cProfile", "-o", args.profile, *serve]
        procs.append(
            subprocess.Popen(
                serve,
                env=env, cwd=work, stdout=serve_log.open("wb"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        lens_base = f"http://127.0.0.1:{lens_port}"
        wait_ready(lens_base + "/readyz", procs[-1], serve_log)
        serving_from = serve_log.stat().st_size  # stalls counted from here
        code = _run_loop(run(args, lens_base, fake_base, procs[-1].pid, procs[0].pid))
        with serve_log.open(errors="replace") as log_file:
            log_file.seek(serving_from)
            logged = log_file.read()
        report, no_stalls = stall_report(logged, STALL_MS)
        print(report)
        if not no_stalls:
            code = code or 1
        problems = logged_problems(logged)
        if problems:
            print(f"Lens logged {len(problems)} warnings/errors, e.g. {problems[0][:300]}")
        if args.keep:
            print(f"logs kept in {work}")
    finally:
        for proc in reversed(procs):
            # uvicorn re-raises the signal after its graceful stop; only after SIGINT
            # (KeyboardInterrupt) does cProfile still get to write its stats.
            proc.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg:
            subprocess.run(
                ["psql", pg[0], "-qc", f'DROP DATABASE IF EXISTS "{pg[1]}" WITH (FORCE)'],
                check=False,
            )
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

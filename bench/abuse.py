"""A script that drops its cookie before every tutor message: where does it stop?

Starts, on this machine, the fake OpenAI-compatible provider (bench/_fake_llm.py) and
`lens serve --no-worker --no-bot` (a fresh SQLite database, the bundled course), the
tutor priced as `openai/gpt-4o-mini` (litellm's bundled prices) so that replies cost
money, with Lens's default limits except a small daily cost cap. Lens believes
`X-Forwarded-For` from 127.0.0.1 here (LENS_FORWARDED_ALLOW_IPS), so the bench can speak
from other networks. Every attempt is a new visitor: it opens the module page (a new
`reader` cookie), then sends one message, one attempt after the other.

1. one IPv4 address, a new cookie each time: the attempts accepted must be exactly the
   per-network limit a minute (LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE);
2. the same inside one IPv6 /64, a new address and cookie each time: the same;
3. a new network and cookie each time, so no per-network limit applies, `--together`
   visitors at a time: the site's daily cost cap must stop it, and what was spent
   (summed from Lens's database) must never pass the cap (each reply holds the most it
   can cost before the model is asked), with no budget still held at the end.

    .venv/bin/python bench/abuse.py [--attempts 60] [--cap 0.01] [--together 20]

Exits 1 when a check fails. Numbers: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutor import API_KEY, FAKE, Chat, find_chat, free_port, wait_ready

MODEL = "openai/gpt-4o-mini"  # priced by litellm's bundled table, served by the fake
NETWORK_LIMIT = 20  # Lens's default LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE


@dataclass
class Tally:
    accepted: int = 0
    refused: int = 0
    other: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


async def attempt(base: str, chat: Chat, address: str) -> tuple[int, str]:
    """One new visitor from `address`: (status, the refusal's message or "")."""
    headers = {"X-Forwarded-For": address, "Origin": base}
    async with httpx.AsyncClient(base_url=base, timeout=60) as visitor:
        page = await visitor.get(chat.page, headers=headers)
        page.raise_for_status()
        async with visitor.stream(
            "POST",
            "/api/tutor/messages",
            json={**chat.at, "message": "Tell me everything, at length."},
            headers=headers,
        ) as response:
            body = (await response.aread()).decode()
        if response.status_code != 200:
            return response.status_code, json.loads(body)["error"]["message"]
        if "event: done" not in body:
            return 599, "the reply did not finish: " + body[-200:]
        return 200, ""


async def run(base: str, chat: Chat, addresses: list[str], *, stop_after: int = 0) -> Tally:
    tally = Tally()
    in_a_row = 0
    for address in addresses:
        status, reason = await attempt(base, chat, address)
        if status == 200:
            tally.accepted += 1
            in_a_row = 0
        elif status == 429:
            tally.refused += 1
            tally.reasons[reason] = tally.reasons.get(reason, 0) + 1
            in_a_row += 1
            if stop_after and in_a_row >= stop_after:
                break
        else:
            tally.other.append(f"{status}: {reason}")
    return tally


async def run_together(base: str, chat: Chat, addresses: list[str], *, together: int) -> Tally:
    """`together` visitors at a time, each from its own network, until a whole batch is
    refused."""
    tally = Tally()
    for start in range(0, len(addresses), together):
        batch = addresses[start : start + together]
        results = await asyncio.gather(*(attempt(base, chat, a) for a in batch))
        for status, reason in results:
            if status == 200:
                tally.accepted += 1
            elif status == 429:
                tally.refused += 1
                tally.reasons[reason] = tally.reasons.get(reason, 0) + 1
            else:
                tally.other.append(f"{status}: {reason}")
        if all(status == 429 for status, _ in results):
            break
    return tally


def held(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM tutor_budget_holds").fetchone()[0])


def spent(db: Path) -> tuple[float, int, float]:
    """(total USD, replies, the dearest reply) from Lens's own records."""
    with sqlite3.connect(db) as conn:
        total, replies, dearest = conn.execute(
            "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*), COALESCE(MAX(cost_usd), 0) "
            "FROM tutor_messages WHERE role = 'assistant'"
        ).fetchone()
    return float(total), int(replies), float(dearest)


def show(name: str, tally: Tally, attempts: int) -> None:
    print(f"{name}: {attempts} attempts, {tally.accepted} accepted, {tally.refused} refused")
    for reason, n in tally.reasons.items():
        print(f"    {n} x 429 {reason!r}")
    for line in tally.other[:3]:
        print(f"    unexpected: {line}")


async def bench(args: argparse.Namespace, base: str, db: Path) -> int:
    chat = find_chat()
    failures = []

    one_ip = ["203.0.113.7"] * args.attempts
    first = await run(base, chat, one_ip)
    show("1. one IPv4 address, a new cookie each time", first, len(one_ip))
    if first.accepted != NETWORK_LIMIT or first.other:
        failures.append(f"1: {first.accepted} accepted, the network limit is {NETWORK_LIMIT}")

    net = ipaddress.ip_network("2001:db8:7:7::/64")
    six = [str(net[n * 7919 + 1]) for n in range(args.attempts)]
    second = await run(base, chat, six)
    show("2. one IPv6 /64, a new address and cookie each time", second, len(six))
    if second.accepted != NETWORK_LIMIT or second.other:
        failures.append(f"2: {second.accepted} accepted, the network limit is {NETWORK_LIMIT}")

    before, _, _ = spent(db)
    many = [str(ipaddress.ip_address("10.0.0.0") + n + 1) for n in range(args.max_networks)]
    third = await run_together(base, chat, many, together=args.together)
    total, replies, dearest = spent(db)
    holds = held(db)
    tried = third.accepted + third.refused + len(third.other)
    show(f"3. a new network and cookie each time, {args.together} at once", third, tried)
    over = total - args.cap
    verdict = f"over the cap by ${over:.6f}" if over > 0 else "within the cap"
    print(
        f"    spent today ${total:.6f} of the ${args.cap:.6f} cap over {replies} replies "
        f"(${total - before:.6f} in phase 3); the dearest reply ${dearest:.6f}; "
        f"{verdict}; {holds} budget holds left"
    )
    if third.refused == 0:
        failures.append("3: the cost cap never refused")
    if over > 0:
        failures.append(f"3: spent ${total:.6f}, over the ${args.cap} cap")
    if holds:
        failures.append(f"3: {holds} budget holds left after every reply ended")
    if third.other:
        failures.append(f"3: unexpected answers: {third.other[:2]}")

    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attempts", type=int, default=60, help="per phase 1 and 2")
    parser.add_argument("--max-networks", type=int, default=400, help="phase 3 at most")
    parser.add_argument("--cap", type=float, default=0.01, help="USD a day, the site's cap")
    parser.add_argument("--together", type=int, default=20, help="phase 3 visitors at once")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per reply")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lens-bench-abuse-"))
    procs: list[subprocess.Popen[bytes]] = []
    code = 1
    try:
        fake_port, lens_port = free_port(), free_port()
        fake_log = work / "fake.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, str(FAKE), "--port", str(fake_port), "--first-token-delay",
                 "0", "--token-delay", "0", "--tokens", str(args.tokens)],
                stdout=fake_log.open("wb"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        fake_base = f"http://127.0.0.1:{fake_port}"
        wait_ready(fake_base + "/health", procs[-1], fake_log)
        db = work / "lens.db"
        env = {
            **os.environ,
            "JWT_SECRET": "bench-" + "x" * 40,
            "FRONTEND_URL": "http://127.0.0.1",
            "LENS_VAR_DIR": str(work / "var"),
            "ENVIRONMENT": "development",
            "DATABASE_URL": f"sqlite:///{db}",
            "LLM_PROVIDER": MODEL,
            "LENS_LLM_API_BASE": fake_base + "/v1",
            "OPENAI_API_KEY": API_KEY,
            "LENS_TUTOR_DAILY_COST_CAP_USD": str(args.cap),
            "LENS_FORWARDED_ALLOW_IPS": "127.0.0.1",
        }
        for name in (
            "CONTENT_DIR", "CONTENT_REPO", "LENS_LLM_FALLBACK", "SENTRY_DSN",
            "LENS_TUTOR_NETWORK_MESSAGES_PER_MINUTE", "LENS_TUTOR_NETWORK_DAILY_TOKENS",
            "LENS_TUTOR_MESSAGES_PER_MINUTE", "LENS_TUTOR_DAILY_TOKENS",
        ):  # fmt: skip
            env.pop(name, None)
        lens_bin = str(Path(sys.executable).parent / "lens")
        subprocess.run([lens_bin, "db", "upgrade"], env=env, cwd=work, check=True)
        serve_log = work / "serve.log"
        procs.append(
            subprocess.Popen(
                [lens_bin, "serve", "--no-worker", "--no-bot", "--port", str(lens_port)],
                env=env, cwd=work, stdout=serve_log.open("wb"), stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        base = f"http://127.0.0.1:{lens_port}"
        wait_ready(base + "/readyz", procs[-1], serve_log)
        code = asyncio.run(bench(args, base, db))
        if args.keep:
            print(f"logs kept in {work}")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

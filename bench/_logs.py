"""Reading a Lens process's log for the benches: its event-loop stalls and its warnings,
whichever format it wrote (JSON in production, console lines in development)."""

from __future__ import annotations

import json
import re

_CONSOLE_STALL = re.compile(r"loop\.stall\s.*?\bms=([\d.]+)")


def _events(text: str) -> list[tuple[str, dict[str, object]]]:
    """(the line, its JSON fields or {}) for each line."""
    out = []
    for line in text.splitlines():
        fields: dict[str, object] = {}
        if line.startswith("{"):
            try:
                fields = json.loads(line)
            except ValueError:
                fields = {}
        out.append((line, fields))
    return out


def loop_stalls(text: str) -> list[tuple[float, str]]:  # (ms, where)
    """Each `loop.stall` Lens logged (LENS_LOOP_STALL_MS): how long, and where. The
    benches pass the log from when Lens answered its first request (start-up, which no
    request waits for, is left out)."""
    stalls: list[tuple[float, str]] = []
    for line, fields in _events(text):
        if fields.get("event") == "loop.stall":
            where = str(fields.get("stack", ""))
            if fields.get("cause") == "busy":
                where += f"\n(a busy loop: {fields.get('callbacks')} callbacks ran in it)"
            elif fields.get("cause") == "blocking":
                where += "\n(one call held the loop)"
            if fields.get("gc_ms"):
                where += (
                    f"\n(of which {fields['gc_ms']} ms in a generation-"
                    f"{fields.get('gc_generation')} garbage collection)"
                )
            stalls.append((float(str(fields.get("ms", 0))), where))
        elif (found := _CONSOLE_STALL.search(line)) is not None:
            busy = "\n(a busy loop: callbacks= in the line)" if "cause=busy" in line else ""
            stalls.append((float(found.group(1)), line + busy))
    return stalls


def problems(text: str) -> list[str]:
    """Warnings and errors Lens logged, other than loop stalls."""
    found = []
    for line, fields in _events(text):
        if fields:
            if fields.get("level") in ("warning", "error", "critical") and (
                fields.get("event") != "loop.stall"
            ):
                found.append(line)
        elif ("[warning" in line or "[error" in line) and "loop.stall" not in line:
            found.append(line)
    return found


def stall_report(text: str, threshold_ms: int) -> tuple[str, bool]:
    """A line (or a few) for the bench's output, and whether there were none."""
    stalls = loop_stalls(text)
    report = f"event-loop stalls over {threshold_ms} ms in Lens (LENS_LOOP_STALL_MS): {len(stalls)}"
    if stalls:
        in_gc = sum(1 for _, where in stalls if "garbage collection)" in where)
        busy = sum(1 for _, where in stalls if "(a busy loop:" in where)
        report += (
            f" ({busy} of them a busy loop, many callbacks back to back, and "
            f"{len(stalls) - busy} one call or unknown; {in_gc} with a garbage collection "
            "in them)"
        )
        longest = max(stalls)
        report += f", longest {longest[0]:.0f} ms, in:\n      " + "\n      ".join(
            longest[1].strip().splitlines()[-8:]
        )
    return report, not stalls

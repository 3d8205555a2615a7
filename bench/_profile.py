"""A CPU profile summary of a running Lens process, for the benches.

Samples the process with py-spy (`pip install py-spy`; not in the project's locks, and
it needs permission to read another process: root, or ptrace allowed), only while a
thread holds the GIL, so what it counts is CPU. `summary()` groups the samples by where
in Lens they were (the first matching label from the bench's own list, else the
innermost library) and prints the largest shares. Without py-spy the benches say so and
go on.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class Profile:
    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        self.out = out
        self.proc: subprocess.Popen[bytes] | None = None
        spy = py_spy()
        if spy is None:
            return
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--gil", "--rate", str(rate),
             "--format", "raw", "--nonblocking", "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> bool:
        """Stop sampling; True when samples were written."""
        if self.proc is None:
            return False
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.out.exists() and self.out.stat().st_size > 0

    def summary(self, labels: list[tuple[str, str]], *, top: int = 8) -> list[str]:
        """Lines "share  label": `labels` are (label, a substring of a frame), tried in
        order against each sample's stack from the outside in."""
        if self.proc is None:
            return ["(no CPU profile: py-spy is not installed; `pip install py-spy`)"]
        if not self.stop():
            return ["(no CPU profile: py-spy wrote nothing; it needs ptrace permission)"]
        counts: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            total += int(n)
            counts[_label(stack, labels)] += int(n)
        if not total:
            return ["(no CPU profile: no samples)"]
        return [f"{100 * n / total:5.1f}%  {label}" for label, n in counts.most_common(top)]


_SITE = re.compile(r"\((?:[^();]*/)?site-packages/")
_OURS = re.compile(r"\((?:[^();]*/)?(lens|bench)/")


def _label(stack: str, labels: list[tuple[str, str]]) -> str:
    # Frames read "function (path:line)"; paths are absolute when py-spy attaches to a
    # process: made relative (lens/…, or the library's own folder) before matching.
    stack = _OURS.sub(r"(\1/", _SITE.sub("(", stack))
    for label, needle in labels:
        if needle in stack:
            return label
    frames = stack.split(";")
    leaf = frames[-1] if frames else "?"
    found = re.search(r"\(([\w.]+)/", leaf) or re.search(r"\((.+?)[:)]", leaf)
    return f"other: {found.group(1) if found else leaf[:40]}"


def machine_speed() -> str:
    """How fast this machine runs plain Python right now: the best of five timings of a
    fixed loop (what `python3 -m timeit "sum(range(10))"` prints). This VM's speed has
    varied 2.5x from one session to the next; with this line, runs of different days
    can be told apart from changes in Lens."""
    import timeit

    number = 200_000
    best = min(timeit.repeat("sum(range(10))", number=number, repeat=5)) / number
    return f"{best * 1e9:.0f} ns a loop of sum(range(10))"

"""Parse and validate a generated content repository of ~1,000 files (target: < 2 s),
and the messy authors' vault of the tests, per file.

    .venv/bin/python bench/content.py [--files 1000] [--repeat 5]
    .venv/bin/python bench/content.py --baseline b4f443d   # the same, against that commit

The repository is built in memory from the bundled example course's shapes: articles
with several excerpts, video transcripts with word timings, lenses, learning outcomes,
v2 and v1 modules and one course listing every module. `--corpus` (default
tests/content/corpus, when it exists) is a real folder, read once and parsed `--repeat`
times.

`--baseline REV` runs the generated repository through the parser of commit REV too, in
the same run: each tree parses in a fresh subprocess of its own (REV from a git
worktree), the two alternating so both see the same machine, and the run exits 1 when
this tree is more than `--tolerance` (10 %) slower per file. That is the bench's pass
condition: no slower than before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lens.content.parsing import load_content

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "content" / "corpus"
# Run in a worktree of another commit: parse the generated repository there, print the
# seconds of each run as JSON. Older commits had lens.content.parser.load_content.
_OTHER = """
import json, sys, time
try:
    from lens.content.parsing import load_content
except ImportError:
    from lens.content.parser import load_content
files = json.load(sys.stdin)
out = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter(); load_content(files); out.append(time.perf_counter() - t)
print(json.dumps(out))
"""

WORDS = [
    *("goal", "measure", "system", "reward", "agent", "value", "safety", "model"),
    *("training", "data", "learn", "world", "policy", "human", "feedback", "test"),
    *("result", "target", "specification", "behaviour", "capable"),
]


def _uid(n: int, kind: int) -> str:
    return str(uuid.UUID(int=(kind << 64) + n, version=4))


def _prose(n: int, words: int) -> str:
    return " ".join(WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(words))


def generate(target_files: int) -> dict[str, str]:
    files: dict[str, str] = {}
    groups = max(1, target_files // 8)  # each group below makes 8 files
    course_lines = ["---", f"id: {_uid(0, 9)}", "slug: big", "title: Big course", "---"]
    for g in range(groups):
        article = f"articles/article-{g}.md"
        sections = "\n\n".join(
            f"## Part {g}-{p}\n\nStart of part {g}-{p}. {_prose(g + p, 120)} End of part {g}-{p}."
            for p in range(4)
        )
        files[article] = (
            f"---\ntitle: Article {g}\nauthor: Author {g}\nsource_url: https://example.org/{g}\n"
            f"---\n{sections}\n"
        )
        transcript = f"video_transcripts/video-{g}"
        words = _prose(g, 400).split()
        files[transcript + ".md"] = (
            f"---\nurl: https://youtu.be/vid{g:08d}\ntitle: Video {g}\nchannel: C\n---\n"
            + " ".join(words)
        )
        files[transcript + ".timestamps.json"] = json.dumps(
            [{"text": w, "start": f"{int(i * 0.4) // 60}:{(i * 0.4) % 60:05.2f}"}
             for i, w in enumerate(words)]
        )  # fmt: skip
        excerpts = "\n".join(
            f"#### Article-excerpt\nfrom:: Start of part {g}-{p}.\nto:: End of part {g}-{p}.\n\n"
            f"#### Chat\ninstructions::\nDiscuss part {p}.\n"
            for p in range(3)
        )
        files[f"Lenses/Article lens {g}.md"] = (
            f"---\nid: {_uid(g, 1)}\n---\n### Article: Reading {g}\n"
            f"source:: [[../articles/article-{g}]]\n\n"
            f"#### Text\ncontent::\nRead this.\n\n{excerpts}"
        )
        files[f"Lenses/Video lens {g}.md"] = (
            f"---\nid: {_uid(g, 2)}\n---\n### Video: Watching {g}\n"
            f"source:: [[../video_transcripts/video-{g}]]\n\n#### Video-excerpt\nfrom:: 0:10\n"
            f"to:: 1:30\n\n#### Chat\ninstructions::\nAsk about the clip.\n"
        )
        files[f"Learning Outcomes/Outcome {g}.md"] = (
            f"---\nid: {_uid(g, 3)}\n---\n## Lens:\nsource:: [[../Lenses/Article lens {g}]]\n\n"
            f"## Lens:\noptional:: true\nsource:: [[../Lenses/Video lens {g}]]\n"
        )
        files[f"modules/module-{g}.md"] = (
            f"---\nid: {_uid(g, 4)}\nslug: module-{g}\ntitle: Module {g}\n---\n"
            f"# Page: Intro {g}\nid:: {_uid(g, 5)}\n## Text\ncontent::\n{_prose(g, 60)}\n\n"
            f"## Chat\ninstructions::\nWelcome.\n\n"
            f"# Learning Outcome:\nsource:: [[../Learning Outcomes/Outcome {g}]]\n"
        )
        files[f"modules/old-{g}.md"] = (
            f"---\nslug: old-{g}\ntitle: Old {g}\n---\n# Article: Old reading {g}\n"
            f"source:: [[../articles/article-{g}]]\n\n## Article-excerpt\n"
            f"from:: Start of part {g}-3.\nto:: End of part {g}-3.\n\n"
            f"# Chat: Talk {g}\ninstructions::\nTalk.\n"
        )
        course_lines += [
            f"# Module: [[../modules/module-{g}]]",
            f"# Module: [[../modules/old-{g}]]",
        ]
        if g % 5 == 4:
            course_lines.append(f"# Meeting: {g // 5 + 1}")
    files["courses/big.md"] = "\n".join(course_lines) + "\n"
    return files


def _time(files: dict[str, str], assets: set[str], repeat: int) -> list[float]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        load_content(files, assets)
        timings.append(time.perf_counter() - started)
    return timings


def _corpus(root: Path) -> tuple[dict[str, str], set[str]]:
    from lens.content.files import read_folder
    from lens.content.parsing.reader import IMAGE_EXTENSIONS

    images = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }
    return read_folder(root), images


def _in_subprocess(tree: Path, files: dict[str, str], repeat: int) -> list[float]:
    """Seconds per run of `tree`'s parser on `files`, in a fresh process (same heap, same
    imports for both trees: a fair comparison)."""
    result = subprocess.run(
        [sys.executable, "-c", _OTHER, str(repeat)],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tempfile.gettempdir(),
    )
    timings: list[float] = json.loads(result.stdout)
    return timings


def _compare(rev: str, files: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    """(this tree's, commit `rev`'s) seconds per run, alternating three times."""
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev],
            check=True,
        )
        try:
            for _ in range(3):
                ours += _in_subprocess(ROOT, files, repeat)
                theirs += _in_subprocess(tree, files, repeat)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True
            )
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=CORPUS if CORPUS.is_dir() else None)
    parser.add_argument("--baseline", metavar="REV", help="compare with this commit's parser")
    parser.add_argument("--tolerance", type=float, default=0.10)
    args = parser.parse_args()
    files = generate(args.files)
    size = sum(len(t) for t in files.values())
    content = load_content(files)
    problems = content.all_problems()
    assert not problems, problems[:5]
    baseline: list[float] = []
    if args.baseline:
        timings, baseline = _compare(args.baseline, files, args.repeat)
    else:
        timings = _time(files, set(), args.repeat)
    median = statistics.median(timings)
    print(
        f"{len(files)} files ({size / 1e6:.1f} MB), {len(content.modules)} modules: "
        f"parse+validate median {median:.3f} s ({median / len(files) * 1e6:.0f} us/file), "
        f"best {min(timings):.3f} s over {len(timings)} runs (target < 2 s)"
    )
    if args.corpus:
        corpus, images = _corpus(args.corpus)
        found = load_content(corpus, images)
        spent = statistics.median(_time(corpus, images, args.repeat))
        name = args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus
        print(
            f"corpus {name}: {len(corpus)} files, {len(found.modules)} modules, "
            f"{found.error_count} errors, {found.warning_count} warnings: median {spent:.4f} s "
            f"({spent / max(len(corpus), 1) * 1e6:.0f} us/file)"
        )
    if args.baseline:
        before = statistics.median(baseline)
        change = median / before - 1
        print(
            f"baseline {args.baseline}: median {before:.3f} s ({before / len(files) * 1e6:.0f} "
            f"us/file) over {len(baseline)} runs; this tree is {change:+.1%} "
            f"(allowed +{args.tolerance:.0%})"
        )
        if change > args.tolerance:
            sys.exit(1)


if __name__ == "__main__":
    main()

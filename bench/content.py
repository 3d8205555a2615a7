"""Parse and validate a generated content repository of ~1,000 files (target: < 2 s).

    .venv/bin/python bench/content.py [--files 1000] [--repeat 5]

The repository is built in memory from the bundled example course's shapes: articles
with several excerpts, video transcripts with word timings, lenses, learning outcomes,
v2 and v1 modules and one course listing every module.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from lens.content.parsing import load_content

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = generate(args.files)
    size = sum(len(t) for t in files.values())
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        content = load_content(files)
        timings.append(time.perf_counter() - started)
    problems = content.all_problems()
    assert not problems, problems[:5]
    print(
        f"{len(files)} files ({size / 1e6:.1f} MB), {len(content.modules)} modules: "
        f"parse+validate median {statistics.median(timings):.3f} s, "
        f"best {min(timings):.3f} s over {args.repeat} runs (target < 2 s)"
    )


if __name__ == "__main__":
    main()

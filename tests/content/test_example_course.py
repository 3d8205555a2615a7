"""Golden test: the bundled example course parses to exactly the recorded structure.

Re-record after an intended change with LENS_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from lens.content.files import read_folder
from lens.content.parsing import load_content

ROOT = Path(__file__).parents[2]
GOLDEN = Path(__file__).parent / "golden" / "example-course.json"


def as_json(value: object) -> str:
    def default(obj: object) -> object:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        raise TypeError(type(obj))

    return json.dumps(value, default=default, indent=1, sort_keys=True, ensure_ascii=False)


def test_example_course_is_valid_and_matches_golden() -> None:
    content = load_content(read_folder(ROOT / "examples" / "course"))
    assert [str(p) for p in content.all_problems()] == []
    assert content.checked == 15 and content.invalid == 0
    course = content.courses["intro-to-ai-safety"]
    assert [u.meeting for u in course.units] == [1, 2, None]
    assert sum(len(u.modules) for u in course.units) == 5
    assert {m.dialect for m in content.modules.values()} == {1, 2}

    actual = as_json({"courses": content.courses, "modules": content.modules}) + "\n"
    if os.environ.get("LENS_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(actual, encoding="utf-8")
    assert actual == GOLDEN.read_text(encoding="utf-8"), (
        "parsed example course changed; if intended, re-record with LENS_UPDATE_GOLDEN=1"
    )

"""docs/content-format.md names every rule the validator can report, and no other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
CODE = [ROOT / "lens/content/syntax.py", *sorted((ROOT / "lens/content/parsing").glob("*.py"))]
DOC = ROOT / "docs/content-format.md"
# `rule="x"`, `rule="x" if ... else "y"`, and Problem(..., ERROR, "x") in syntax.py.
RULE = re.compile(
    r'rule="([a-z.-]+)"(?: if [^\n]* else "([a-z.-]+)")?|(?:ERROR|WARNING),\s*"([a-z.-]+)"'
)


def rules_in_code() -> set[str]:
    found: set[str] = set()
    for path in CODE:
        text = path.read_text()
        found |= {name for match in RULE.findall(text) for name in match if name}
        # f"transcript.{key}" for key in ("title", "channel")
        if 'rule=f"transcript.{key}"' in text:
            found |= {"transcript.title", "transcript.channel"}
    return {r for r in found if not r.endswith((".md", ".py", ".html"))}


def rules_in_doc() -> set[str]:
    table = DOC.read_text().split("## Every rule", 1)[1]
    return set(re.findall(r"^\| `([a-z.-]+)` \|", table, flags=re.M))


def test_every_rule_is_documented_and_every_documented_rule_exists() -> None:
    code, doc = rules_in_code(), rules_in_doc()
    assert len(code) > 40
    assert code - doc == set(), "rules missing from docs/content-format.md"
    assert doc - code == set(), "documented rules the code never reports"


def test_the_documents_examples_make_a_repository_that_validates_clean() -> None:
    from lens.content.parsing import load_content

    doc = DOC.read_text()
    files = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"\*\*`([^`]+)`\*\*[^\n]*\n\n```(?:markdown|json)\n(.*?)```", doc, flags=re.S
        )
    }
    assert len(files) == 9
    content = load_content(files)
    assert content.all_problems() == []
    assert set(content.courses) == {"demo"} and len(content.modules) == 2

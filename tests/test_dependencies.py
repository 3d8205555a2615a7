"""What pyproject.toml promises about dependencies is what is tested.

`dependencies` gives each package a floor; requirements/lowest.lock installs every one of
them at exactly that floor (`make test-lowest`, run by .ci/run), so an install that does
not use the lock file gets versions the suite has run against. Every third-party package
Lens imports is declared, so none of them is left to whatever another package pulls in.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _declared() -> dict[str, str]:
    """Each runtime dependency -> its version specifier."""
    out = {}
    for line in PYPROJECT["project"]["dependencies"]:
        found = REQUIREMENT.match(line)
        assert found, line
        out[_name(found.group(1))] = found.group(3)
    return out


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_name(name.split("[", 1)[0])] = version.strip()
    return pins


def test_every_floor_is_what_the_lowest_lock_installs() -> None:
    lowest = _pins("lowest.lock")
    wrong = []
    for name, spec in _declared().items():
        floor = re.search(r">=\s*([^,\s]+)", spec)
        if floor is None:
            wrong.append(f"{name}: no floor (>=) in pyproject.toml")
        elif lowest.get(name) != floor.group(1):
            wrong.append(f"{name}: floor {floor.group(1)}, lowest.lock has {lowest.get(name)}")
    assert not wrong, "pyproject.toml and requirements/lowest.lock disagree:\n" + "\n".join(wrong)


def test_every_dependency_is_in_the_runtime_lock() -> None:
    runtime = _pins("runtime.lock")
    assert not [name for name in _declared() if name not in runtime]


def test_every_third_party_import_is_declared() -> None:
    declared = set(_declared())
    distributions = packages_distributions()
    undeclared: dict[str, str] = {}  # package -> a file importing it
    for path in (ROOT / "lens").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".", 1)[0]
                if top == "lens" or top in sys.stdlib_module_names:
                    continue
                names = {_name(d) for d in distributions.get(top, [top])}
                if not names & declared:
                    undeclared.setdefault(top, str(path.relative_to(ROOT)))
    assert not undeclared, f"imported but not in pyproject.toml dependencies: {undeclared}"

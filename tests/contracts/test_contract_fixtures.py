"""The vendor contract excerpts in this folder stay loadable and self-contained."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
OPENAPI = sorted(HERE.glob("*/openapi.excerpt.json"))
DISCOVERY = sorted(HERE.glob("*/discovery.excerpt.json"))
# Refs the vendor's own full document leaves dangling (see that folder's SOURCE.md).
KNOWN_DANGLING = {"gemini": {"MediaResolution"}}
# Schemas that are not valid JSON Schema in the vendor's document, kept verbatim.
KNOWN_INVALID = {("discord", "PollLayoutTypes")}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _pointer(doc: Any, ref: str) -> Any:
    node = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_vendor_folder_has_an_excerpt_and_a_source_note() -> None:
    assert len(OPENAPI) == 5 and len(DISCOVERY) == 2
    for path in OPENAPI + DISCOVERY:
        assert (path.parent / "SOURCE.md").is_file(), path.parent.name


@pytest.mark.parametrize("path", OPENAPI, ids=lambda p: p.parent.name)
def test_openapi_excerpt_refs_resolve(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.")
    missing: list[str] = []
    for ref in set(_refs(doc)):
        assert ref.startswith("#/"), ref
        try:
            _pointer(doc, ref)
        except (KeyError, IndexError):
            missing.append(ref)
    assert not missing


@pytest.mark.parametrize("path", OPENAPI, ids=lambda p: p.parent.name)
def test_openapi_excerpt_schemas_are_json_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(path.read_text(encoding="utf-8"))
    for name, schema in doc["components"].get("schemas", {}).items():
        if (path.parent.name, name) in KNOWN_INVALID:
            continue
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", DISCOVERY, ids=lambda p: p.parent.name)
def test_discovery_excerpt_refs_resolve(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    missing = {ref for ref in _refs(doc) if ref not in doc["schemas"]}
    assert missing <= KNOWN_DANGLING.get(path.parent.name, set())


def test_discord_permission_bits_are_consistent() -> None:
    facts = json.loads((HERE / "discord" / "facts.json").read_text(encoding="utf-8"))
    flags = facts["permissions"]["flags"]
    assert flags["CREATE_EVENTS"]["value"] == 1 << 44
    for flag in flags.values():
        assert flag["value"] == 1 << flag["shift"] == int(flag["hex"], 16)

"""Cut a self-contained excerpt out of a Google API discovery document.

Used to make the discovery excerpts in this folder (see each SOURCE.md); not a test.

    python tests/contracts/slice_discovery.py FULL.json OUT.json --method events.insert ... \
        [--schema Name]

Keeps the document's top-level description fields (not `resources` or `schemas`), the
chosen methods under their resource path, and every schema reachable from them (a
discovery `$ref` is a bare schema name), transitively, copied unchanged. A name that
the full document refers to but never defines is reported and left as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TOP = (
    "kind",
    "discoveryVersion",
    "id",
    "name",
    "version",
    "revision",
    "title",
    "description",
    "documentationLink",
    "protocol",
    "rootUrl",
    "servicePath",
    "baseUrl",
    "batchPath",
    "mtlsRootUrl",
    "parameters",
    "auth",
)


def names_in(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def cut(doc: dict[str, Any], methods: list[str], schemas: list[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {k: doc[k] for k in TOP if k in doc}
    resources: dict[str, Any] = {}
    roots: list[Any] = []
    for dotted in methods:
        *path, name = dotted.split(".")
        src = doc
        for part in path:
            src = src["resources"][part]
        method = src["methods"][name]
        holder = _holder(resources, path)
        holder.setdefault("methods", {})[name] = method
        roots.append(method)
    _prune_empty(resources)
    out["resources"] = resources
    todo = set(schemas)
    for root in roots:
        todo |= names_in(root)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in doc["schemas"]:
            todo |= names_in(doc["schemas"][name]) - seen
    out["schemas"] = {k: v for k, v in doc["schemas"].items() if k in seen}
    return out


def _holder(resources: dict[str, Any], path: list[str]) -> dict[str, Any]:
    node: dict[str, Any] = {"resources": resources}
    for part in path:
        node = node.setdefault("resources", {}).setdefault(part, {})
    return node


def _prune_empty(resources: dict[str, Any]) -> None:
    for key in list(resources):
        sub = resources[key].get("resources")
        if sub is not None:
            _prune_empty(sub)
            if not sub:
                del resources[key]["resources"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("doc")
    parser.add_argument("out")
    parser.add_argument("--method", action="append", default=[])
    parser.add_argument("--schema", action="append", default=[])
    args = parser.parse_args(argv)
    doc = json.loads(Path(args.doc).read_text(encoding="utf-8"))
    out = cut(doc, args.method, args.schema)
    missing = sorted(n for n in names_in(out) if n not in out["schemas"])
    if any(n in doc["schemas"] for n in missing):
        raise SystemExit(f"unresolved schema refs: {missing}")
    if missing:
        # The full document itself refers to these without defining them.
        print(f"warning: refs the source document never defines: {missing}", file=sys.stderr)
    Path(args.out).write_text(
        json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{args.out}: {len(args.method)} methods, {len(out['schemas'])} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

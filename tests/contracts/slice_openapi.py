"""Cut a self-contained excerpt out of a vendor's OpenAPI document.

Used to make the spec excerpts in this folder (see each vendor's SOURCE.md); not a test.

    python tests/contracts/slice_openapi.py FULL_SPEC OUT.json --op "get /users/@me" ... \
        [--ref "#/components/schemas/X"] [--webhook push] [--drop-key x-octokit]

Keeps: the top-level `openapi`, `info`, `servers`, `security`; the chosen operations (with the
path item's own `parameters`); the chosen `webhooks`/`x-webhooks` entries; the security
schemes the chosen operations name; and every `#/...` $ref reachable from all of those,
transitively, copied unchanged. Nothing else is kept, so every $ref in the output
resolves inside the output. Key order follows the full document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load(path: str) -> Any:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def pointer(doc: Any, ref: str) -> Any:
    node = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def strip_keys(node: Any, drop: set[str]) -> Any:
    if isinstance(node, dict):
        return {k: strip_keys(v, drop) for k, v in node.items() if k not in drop}
    if isinstance(node, list):
        return [strip_keys(v, drop) for v in node]
    return node


def refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def closure(doc: Any, roots: list[Any], extra: list[str]) -> set[str]:
    todo = set(extra)
    for root in roots:
        todo |= refs_in(root)
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        todo |= refs_in(pointer(doc, ref)) - seen
    return seen


def cut(
    doc: dict[str, Any],
    ops: list[tuple[str, str]],
    extra_refs: list[str] = (),
    webhooks: list[str] = (),
    keep_top: tuple[str, ...] = ("openapi", "info", "servers", "security"),
) -> dict[str, Any]:
    out: dict[str, Any] = {k: doc[k] for k in keep_top if k in doc}
    paths: dict[str, Any] = {}
    roots: list[Any] = []
    schemes: set[str] = set()
    for method, path in ops:
        item = doc["paths"][path]
        op = item[method]
        entry = paths.setdefault(path, {k: v for k, v in item.items() if k not in METHODS})
        entry[method] = op
        roots.append(entry)
        for requirement in op.get("security", doc.get("security", [])):
            schemes |= set(requirement)
    # Keep each path's methods in the full document's order.
    out["paths"] = {
        p: {k: v for k, v in doc["paths"][p].items() if k in paths[p]}
        for p in doc["paths"]
        if p in paths
    }
    for key in ("webhooks", "x-webhooks"):
        chosen = {name: doc[key][name] for name in doc.get(key, {}) if name in webhooks}
        if chosen:
            out[key] = chosen
            roots.append(chosen)
    refs = closure(doc, roots, list(extra_refs))
    components: dict[str, Any] = {}
    for section, entries in doc.get("components", {}).items():
        kept = {
            name: value
            for name, value in entries.items()
            if f"#/components/{section}/{name.replace('~', '~0').replace('/', '~1')}" in refs
            or (section == "securitySchemes" and name in schemes)
        }
        if kept:
            components[section] = kept
    out["components"] = components
    other = [r for r in refs if not r.startswith("#/components/") and not r.startswith("#/paths/")]
    if other:
        raise SystemExit(f"refs outside components not handled: {sorted(other)}")
    return out


def unresolved(doc: Any) -> list[str]:
    bad = []
    for ref in sorted(refs_in(doc)):
        try:
            pointer(doc, ref)
        except (KeyError, IndexError, TypeError):
            bad.append(ref)
    return bad


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("out")
    parser.add_argument("--op", action="append", default=[], help='"METHOD /path"')
    parser.add_argument("--ref", action="append", default=[])
    parser.add_argument("--webhook", action="append", default=[])
    parser.add_argument("--drop-key", action="append", default=[])
    args = parser.parse_args(argv)
    doc = load(args.spec)
    if args.drop_key:
        doc = strip_keys(doc, set(args.drop_key))
    ops = []
    for spec in args.op:
        method, path = spec.split(" ", 1)
        ops.append((method.lower(), path))
    out = cut(doc, ops, args.ref, args.webhook)
    bad = unresolved(out)
    if bad:
        raise SystemExit(f"unresolved refs: {bad}")
    Path(args.out).write_text(
        json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    n = sum(len(v) for v in out["components"].values())
    print(f"{args.out}: {len(out['paths'])} paths, {n} components, {len(json.dumps(out))} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

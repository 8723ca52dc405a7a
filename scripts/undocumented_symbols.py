#!/usr/bin/env python3
"""Lists the public symbols of a symbol graph that have no documentation comment.

Usage: scripts/undocumented_symbols.py SYMBOL_GRAPH_DIR [--root DIR]

Reads every `*.symbols.json` in SYMBOL_GRAPH_DIR (as `swift-symbolgraph-extract` writes them) and prints one
line per public symbol without a doc comment, `file:line: kind path`, then the count. Not counted:
- compiler-synthesized symbols (`::SYNTHESIZED::` in the identifier: Hashable's `hashValue`, default
  implementations repeated on each conforming type, ...),
- extension blocks (`swift.extension`; their members are counted),
- protocol-conformance implementations that inherit the protocol's documentation (the symbol graph then
  carries the protocol requirement's doc comment, e.g. `description` from `CustomStringConvertible`).
Exit status 0; the caller decides what a non-zero count means.
"""
import json
import os
import sys


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    directory = args[0]
    root = os.path.abspath(args[args.index("--root") + 1]) if "--root" in args else os.getcwd()
    files = sorted(f for f in os.listdir(directory) if f.endswith(".symbols.json"))
    if not files:
        print(f"no *.symbols.json in {directory}", file=sys.stderr)
        return 2
    seen = set()
    missing = []
    total = 0
    for name in files:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            graph = json.load(f)
        for symbol in graph["symbols"]:
            precise = symbol["identifier"]["precise"]
            kind = symbol["kind"]["identifier"]
            if precise in seen or "::SYNTHESIZED::" in precise or kind == "swift.extension":
                continue
            if symbol.get("accessLevel") not in ("public", "open"):
                continue
            seen.add(precise)
            total += 1
            lines = (symbol.get("docComment") or {}).get("lines") or []
            if any(line.get("text", "").strip() for line in lines):
                continue
            location = symbol.get("location") or {}
            path = location.get("uri", "?").removeprefix("file://")
            if path.startswith(root + "/"):
                path = path[len(root) + 1:]
            line = (location.get("position") or {}).get("line", -1) + 1
            title = ".".join(symbol["pathComponents"])
            missing.append((path, line, kind.removeprefix("swift."), title))
    for path, line, kind, title in sorted(missing):
        print(f"{path}:{line}: {kind} {title}")
    print(f"{len(missing)} of {total} public symbols undocumented")
    return 0


if __name__ == "__main__":
    sys.exit(main())

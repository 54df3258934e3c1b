"""Print the imports between the parts of kam_analysis, with module sizes.

Usage: ``python tools/import_graph.py [PACKAGE_DIR]`` (default: ``kam_analysis``).

For each top-level part (a module, or a subpackage taken as one), the parts it
imports, how many of those imports sit inside a function, and which ``_private``
names it imports from another part; then every module with its line count.
It reads the source only (``ast``), so it also works on an older checkout.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` inside the package folder ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_module(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` in module ``name`` refers to."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def part_of(module: str, root: str) -> str:
    """The top-level part of the package a module belongs to (``data``, ``plots``, ...)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[0] == root else module


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of parts that import each other, directly or through others."""
    reach = {a: set(b) for a, b in edges.items()}
    changed = True
    while changed:
        changed = False
        for a in reach:
            more = set().union(*(reach.get(b, set()) for b in reach[a])) - reach[a]
            if more:
                reach[a] |= more
                changed = True
    groups = {tuple(sorted(b for b in reach if b in reach[a] and a in reach[b])) for a in reach}
    return sorted(list(g) for g in groups if len(g) > 1)


def main(argv: list[str]) -> int:
    """Print the part graph and the module sizes; returns the exit code."""
    root = Path(argv[0] if argv else "kam_analysis")
    edges: dict[str, set[str]] = defaultdict(set)
    inner: dict[str, int] = defaultdict(int)
    private: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        source = path.read_text(encoding="utf-8")
        sizes[name] = source.count("\n")
        here = part_of(name, root.name)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom):
                target = imported_module(node, name, path.name == "__init__.py")
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                target, names = node.names[0].name, []
            else:
                continue
            if not target.startswith(root.name + ".") and target != root.name:
                continue
            if target == root.name:  # `from kam_analysis import kpi, scenarios`
                theres = [n for n in names if not n.startswith("__")]
            else:
                theres = [part_of(target, root.name)]
            for there in theres:
                if there == here:
                    continue
                edges[here].add(there)
                inner[here] += node.col_offset > 0
                private[here] |= {
                    f"{there}.{n}" for n in names if n.startswith("_") and not n.startswith("__")
                }
    print("part -> parts it imports   [imports inside functions] [private names]")
    for part in sorted(edges):
        extra = f"  [{inner[part]} inside functions]" if inner[part] else ""
        extra += f"  [private: {', '.join(sorted(private[part]))}]" if private[part] else ""
        print(f"  {part} -> {', '.join(sorted(edges[part]))}{extra}")
    cycles = import_cycles({k: set(v) for k, v in edges.items()})
    print("import cycles between parts:", "; ".join(" <-> ".join(c) for c in cycles) or "none")
    print(f"\nmodules ({len(sizes)}, {sum(sizes.values()):,} lines), largest first:")
    for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {n:6,d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The import graph of ``vd``: no circles, and imports point down the layers.

Every module under vd/ is parsed with ``ast`` (nothing is imported); every ``import`` and
``from … import`` counts, at module level AND inside functions and methods (an import hidden in
a function is still a dependency, it only runs later), relative ones resolved against the
module's package. ``from vd.model import runfolder`` is an edge to ``vd.model.runfolder`` (a
module) — names that are not modules make an edge to the package they come from.

Layers (notes/common.md): cli → score → (extract, model, data) → (runtime, errors, jsonout,
faults). ``vd.model`` never imports extract/score/cli, ``vd.extract`` never imports
model/score/cli, ``vd.data`` imports none of extract/model/score/cli, ``vd.score`` never
imports cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "vd"

FORBIDDEN = {
    "vd.model": ("vd.extract", "vd.score", "vd.cli"),
    "vd.extract": ("vd.model", "vd.score", "vd.cli"),
    "vd.data": ("vd.extract", "vd.model", "vd.score", "vd.cli"),
    "vd.score": ("vd.cli", "vd.live", "vd.serve"),
    "vd.live": ("vd.cli", "vd.serve"),
    "vd.serve": ("vd.cli",),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported vd module, line) for every import statement anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):   # walks function bodies too
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in known else base, node.lineno))
    return [(m, line) for m, line in out if m in known and m != module]


def graph() -> dict[str, dict[str, int]]:
    mods = all_modules()
    known = set(mods)
    g: dict[str, dict[str, int]] = {m: {} for m in mods}
    for m, path in mods.items():
        for target, line in imports_of(m, path, known):
            g[m].setdefault(target, line)
    return g


def find_cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """One concrete circle (a → … → a) per strongly connected component with a circle."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):  # Tarjan, iterative enough for a package this size
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    cycles = []
    for comp in comps:   # shortest path back to the start, inside the component
        start, members = comp[0], set(comp)
        prev, frontier, seen = {}, [start], {start}
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(g[v]):
                    if w in members and w == start and start not in prev:
                        prev[start] = v
                    elif w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path, v = [start], prev[start]
        while v != start:
            path.append(v)
            v = prev[v]
        path.append(start)
        cycles.append(path[::-1])
    return cycles


def _describe(g, cycle: list[str]) -> str:
    return " → ".join(f"{a} (line {g[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" → {cycle[-1]}"


# --------------------------------------------------------------------------- the checker itself


def test_the_walker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "vd"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from . import y\n")
    (pkg / "a" / "y.py").write_text("class C:\n    def m(self):\n        import vd.a.z\n")
    (pkg / "a" / "z.py").write_text("from ..a.x import f\n")
    (pkg / "b.py").write_text("from vd.a import x, missing_name\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    g = graph()
    assert g["vd.a.x"] == {"vd.a.y": 2} and g["vd.a.y"] == {"vd.a.z": 3}
    assert g["vd.a.z"] == {"vd.a.x": 1}
    assert set(g["vd.b"]) == {"vd.a.x", "vd.a"}
    (cycle,) = find_cycles(g)
    assert cycle == ["vd.a.x", "vd.a.y", "vd.a.z", "vd.a.x"]
    assert "vd.a.x (line 2) → vd.a.y (line 3)" in _describe(g, cycle)


# --------------------------------------------------------------------------- the real package


def test_no_import_cycles():
    g = graph()
    cycles = find_cycles(g)
    assert not cycles, "import circle(s):\n" + "\n".join(_describe(g, c) for c in cycles)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layering(layer):
    g = graph()
    bad = [f"{m} imports {t} (line {line})" for m, targets in sorted(g.items())
           if m == layer or m.startswith(layer + ".")
           for t, line in sorted(targets.items())
           if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[layer])]
    assert not bad, f"{layer} must not import {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(bad)

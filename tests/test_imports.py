"""The import graph of ``vd``: no circles, and imports point down the layers.

Every module under vd/ is parsed with ``ast`` (nothing is imported); every ``import`` and
``from … import`` counts, at module level AND inside functions and methods (an import hidden in
a function is still a dependency, it only runs later), relative ones resolved against the
module's package. ``from vd.model import runfolder`` is an edge to ``vd.model.runfolder`` (a
module) — names that are not modules make an edge to the package they come from.

The layers, top to bottom (``MAY_IMPORT`` below is the same as a table, one row per layer):

    cli → export → serve → live → score → (extract, model) → data → base

where base = runtime, errors, jsonout, faults, outputs, hashing, redact, and ``vd`` itself
(``__version__``, ``LABEL_NAMES``). A module may import its own package and the layers its row
names, nothing else: extract and model never see each other; data, extract and model never
import score, live, serve or cli; a base module imports at most ``vd.errors`` (runtime,
outputs) or nothing. ``synthetic`` (the generated test clips) is a tool for cli alone. Every
module of vd must belong to a row: a new top-level module or package is placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "vd"

BASE = ("vd", "vd.runtime", "vd.errors", "vd.jsonout", "vd.faults", "vd.outputs", "vd.hashing",
        "vd.redact")
_BELOW_SCORE = ("vd.extract", "vd.model", "vd.data") + BASE

# layer (a package or module, with everything under it) -> what else it may import
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "vd.cli":       ("vd.export", "vd.serve", "vd.live", "vd.score", "vd.synthetic") + _BELOW_SCORE,
    "vd.export":    ("vd.score",) + _BELOW_SCORE,
    "vd.serve":     ("vd.live", "vd.score") + _BELOW_SCORE,
    "vd.live":      ("vd.score",) + _BELOW_SCORE,
    "vd.score":     _BELOW_SCORE,
    "vd.extract":   ("vd.data",) + BASE,
    "vd.model":     ("vd.data",) + BASE,
    "vd.data":      BASE,
    "vd.synthetic": BASE,
    "vd.runtime":   ("vd.errors",),
    "vd.outputs":   ("vd.errors",),
    "vd.errors":    (),
    "vd.jsonout":   (),
    "vd.faults":    (),
    "vd.hashing":   (),
    "vd.redact":    (),
    "vd":           (),
}


def layer_of(module: str) -> str | None:
    """The row of ``MAY_IMPORT`` a module belongs to: the longest layer name that is the module
    or a package above it (``vd`` only for ``vd/__init__.py`` itself)."""
    rows = [k for k in MAY_IMPORT if module == k or (k != "vd" and module.startswith(k + "."))]
    return max(rows, key=len) if rows else None


def allowed(module: str, target: str) -> bool:
    """May ``module`` import ``target``? Its own layer, or a layer its row names."""
    own, theirs = layer_of(module), layer_of(target)
    return theirs is not None and (theirs == own or theirs in MAY_IMPORT.get(own, ()))


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


def violations(g: dict[str, dict[str, int]]) -> list[str]:
    """Every edge the table does not allow, and every module in no row, one line each."""
    bad = [f"{m} is in no layer of MAY_IMPORT" for m in sorted(g) if layer_of(m) is None]
    bad += [f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)}), line {line}"
            for m, targets in sorted(g.items()) for t, line in sorted(targets.items())
            if layer_of(m) is not None and not allowed(m, t)]
    return bad


def test_the_table_is_the_layer_order():
    """Rows only name rows, nothing imports itself by name, and the table has no circle: each
    layer may import only layers strictly below it."""
    for layer, below in MAY_IMPORT.items():
        assert layer not in below and set(below) <= set(MAY_IMPORT), layer
    order = ["vd.cli", "vd.export", "vd.serve", "vd.live", "vd.score", "vd.extract", "vd.model",
             "vd.data", "vd.synthetic"]
    for i, layer in enumerate(order):
        assert not set(MAY_IMPORT[layer]) & set(order[:i + 1]), layer
    for base in BASE:  # the base imports at most vd.errors
        assert set(MAY_IMPORT[base]) <= {"vd.errors"}, base
    assert "vd.model" not in MAY_IMPORT["vd.extract"] and "vd.extract" not in MAY_IMPORT["vd.model"]


def test_the_checker_catches_a_forbidden_import(tmp_path, monkeypatch):
    """A store module importing the live layer, a base module importing data, a module in no
    row: each is reported with its line."""
    pkg = tmp_path / "vd"
    for d in ("data", "live", "extract"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "outputs.py").write_text("from vd.errors import X\ndef f():\n    from vd.data import store\n")
    (pkg / "data" / "store.py").write_text("import os\n\n\ndef g():\n    import vd.live.events\n")
    (pkg / "live" / "events.py").write_text("from vd.data import store\n")
    (pkg / "extract" / "run.py").write_text("from vd.data.store import g\nfrom vd import errors\n")
    (pkg / "newthing.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    assert violations(graph()) == [
        "vd.newthing is in no layer of MAY_IMPORT",
        "vd.data.store (vd.data) imports vd.live.events (vd.live), line 5",
        "vd.outputs (vd.outputs) imports vd.data.store (vd.data), line 3",
    ]


def test_layering():
    bad = violations(graph())
    assert not bad, "imports against the layer table (MAY_IMPORT):\n" + "\n".join(bad)

"""The import graph of the package has no circles (issue 18).

Read from the source (every ``import``, at module level or inside a function),
so a lazy import inside a function that only hides a circle counts too. A
circle means two modules that cannot be understood, tested or changed one
without the other; the layers are: frame/errors/settings -> stages (mask,
guards, effects, composite, segment) -> nodes -> pipeline -> io, pool, split
-> jobs -> batch, live, web, evaluate -> cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import blurcam

ROOT = Path(blurcam.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
            elif (node.module or "").startswith("blurcam"):
                base = []
            else:
                continue
            mod = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in mods else mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in mods)
    return {m for m in found if m in mods and m != name}


def circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    mods = _modules()
    edges = {m: _imports(m, p, mods) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles() -> None:
    assert len(_modules()) > 50  # the walk found the package
    assert circles() == []


def test_stages_do_not_import_the_layers_above_them() -> None:
    """The stage modules are pure functions: nothing from nodes, pipeline, io or above."""
    mods = _modules()
    above = ("blurcam.nodes", "blurcam.pipeline", "blurcam.io", "blurcam.jobs", "blurcam.cli")
    for stage in ("mask", "guards", "composite", "upscale", "settings", "frame", "errors"):
        name = f"blurcam.{stage}"
        bad = {m for m in _imports(name, mods[name], mods) if m.startswith(above)}
        assert not bad, f"{name} imports {bad}"

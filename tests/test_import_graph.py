"""Data flows one way through ``pipeline``: the import graph, read from the source.

Every module under ``pipeline/`` is parsed with :mod:`ast` (never imported), and
every ``import`` / ``from ... import`` in it counts, at the top of the file or
inside a function: an import hidden in a function still ties the two modules
together. The layers, lowest first (a package or top-level module may import only
from layers below its own, never from a sibling in its own layer):

0. ``errors``, ``interrupts``, the package root (``__version__``): no imports.
1. ``frame``, ``volume``, ``parallel``, ``progress``: the shared layer, plain
   values every stage passes around.
2. ``geometry``: distances, signed distances and the vertebral body frame on
   masks, written once for every stage.
3. ``exchange``: files to plain values and back; imports no stage.
4. ``phantom``, ``segment``: volumes in, volumes or labels out.
5. ``mesh``, ``defect``: surfaces and body heights of a segmentation.
6. ``bone_quality``: density inside the bodies ``defect`` measures.
7. ``scaffold``, ``guide``: the implants.
8. ``printing``, ``render``: which process prints what; pictures.
9. ``jobs``: orchestration, the only place where stages meet files.
10. ``summary``, then 11. ``outcome``, then 12. ``cli``: the command line, which
   parses and prints (and reaches stages and files only through ``jobs``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pipeline"

#: Lowest first; see the module docstring.
LAYERS: list[set[str]] = [
    {"errors", "interrupts", ""},
    {"frame", "volume", "parallel", "progress"},
    {"geometry"},
    {"exchange"},
    {"phantom", "segment"},
    {"mesh", "defect"},
    {"bone_quality"},
    {"scaffold", "guide"},
    {"printing", "render"},
    {"jobs"},
    {"summary"},
    {"outcome"},
    {"cli"},
]
#: The command line parses and prints: files and the phantom are the jobs' business.
CLI_MAY_NOT_IMPORT = {"exchange", "phantom"}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports, anywhere in its file.

    ``from pkg import x`` depends on the module ``pkg.x`` when that is a module,
    else on ``pkg`` itself (its ``__init__``).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def unit(module: str) -> str:
    """The package or top-level module ``module`` belongs to ('' for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units = defaultdict(set)
    for a, targets in graph.items():
        units[unit(a)].update(unit(b) for b in targets if unit(b) != unit(a))
    return dict(units)


def rank(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise KeyError(name)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports that do not go strictly down the layers, as 'a -> b (why)'."""
    wrong = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            ua, ub = unit(a), unit(b)
            if ua == ub:
                continue
            if rank(ub) >= rank(ua):
                wrong.append(f"{a} -> {b} ({ub or 'pipeline'} is not below {ua or 'pipeline'})")
            elif ua == "cli" and ub in CLI_MAY_NOT_IMPORT:
                wrong.append(f"{a} -> {b} (the command line reaches {ub} only through jobs)")
    return wrong


@pytest.fixture(scope="module")
def graph():
    return module_graph()


def test_the_graph_is_read_from_every_module(graph):
    # An independent count: every .py file is one module, and the known edges are seen.
    assert len(graph) == len(list(ROOT.rglob("*.py")))
    assert "pipeline.volume" in graph["pipeline.segment"]
    assert "pipeline.exchange.atomic" in graph["pipeline.exchange.stl"]


def test_every_package_has_a_layer(graph):
    for name in graph:
        rank(unit(name))  # raises KeyError for a package the layers do not place


def test_no_module_imports_a_module_that_imports_it_back(graph):
    assert cycles(graph) == []


def test_no_package_imports_a_package_that_imports_it_back(graph):
    assert cycles(package_graph(graph)) == []


def test_every_import_goes_down_the_layers(graph):
    assert upward_imports(graph) == []


def test_no_module_reaches_into_another_package_s_private_names():
    # A leading underscore marks a name as its package's own business.
    wrong = []
    for name, path in module_files().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            if unit(source) == unit(name) or not source.startswith("pipeline"):
                continue
            private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
            private += [source] if any(p.startswith("_") for p in source.split(".")) else []
            wrong += [f"{name}: {source}.{p}" for p in private]
    assert wrong == []


def test_a_hidden_upward_import_is_caught(tmp_path):
    # The checker itself, on a package made for it: a stage importing a job inside a
    # function, and two modules importing each other that way.
    pkg = tmp_path / "pipeline"
    for folder in ("segment", "jobs"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "segment" / "a.py").write_text("def f():\n    from ..jobs.run import go\n    from .b import g\n")
    (pkg / "segment" / "b.py").write_text("def g():\n    from . import a\n")
    (pkg / "jobs" / "run.py").write_text("from ..segment.a import f\n")
    small = module_graph(pkg)
    assert small["pipeline.segment.a"] == {"pipeline.jobs.run", "pipeline.segment.b"}
    assert cycles(small) == [["pipeline.jobs.run", "pipeline.segment.a", "pipeline.segment.b"]]
    assert upward_imports(small) == ["pipeline.segment.a -> pipeline.jobs.run (jobs is not below segment)"]

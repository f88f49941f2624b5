"""No helper is written twice: function bodies are compared across the package.

Two functions whose bodies are the same statements, up to the names of their
variables and arguments, are one helper written twice: it belongs once, in the
lower of the two packages (see tests/test_import_graph.py for the layers), and the
other imports it. One-statement functions (a rounding shorthand, a property) are
boilerplate and not compared.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pipeline"


class _Anonymous(ast.NodeTransformer):
    """Renames every variable and argument, so that renaming does not hide a copy."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg="_"), node)


def body_key(func: ast.FunctionDef) -> str | None:
    """The function's statements without its docstring, names erased; None when it
    has fewer than two statements."""
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) < 2:
        return None
    module = ast.parse(ast.unparse(ast.Module(body=body, type_ignores=[])))
    return ast.dump(_Anonymous().visit(module))


def repeated_bodies(root: Path = ROOT) -> list[list[str]]:
    found = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                key = body_key(node)
                if key is not None:
                    found[key].append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}")
    return [places for places in found.values() if len(places) > 1]


def test_no_function_body_is_written_twice():
    assert repeated_bodies() == []


def test_a_renamed_copy_is_found(tmp_path):
    pkg = tmp_path / "pipeline"
    (pkg / "a").mkdir(parents=True)
    (pkg / "a" / "x.py").write_text("def f(v):\n    '''doc'''\n    w = v * 2\n    return w + 1\n")
    (pkg / "b.py").write_text("def g(q):\n    r = q * 2\n    return r + 1\n\ndef h(q):\n    return q\n")
    assert repeated_bodies(pkg) == [["pipeline/a/x.py:1 f", "pipeline/b.py:1 g"]]

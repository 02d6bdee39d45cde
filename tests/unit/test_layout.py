"""The code's shape: layers import one way, no import circles, no path hacks.

Read from the source with ast, so this runs in milliseconds: every import counts, including
those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "trt", "dashboard")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module `name` imports, at module level or inside functions: a lazy import is a
    dependency all the same, and a circle through one is still a circle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m.split(".")[0] in (*PACKAGES, "streamlit")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def test_layers_import_one_way():
    """dashboard -> engine, trt; trt -> engine; engine -> nothing of ours; only the
    dashboard imports Streamlit."""
    allowed = {"engine": {"engine"}, "trt": {"trt", "engine"},
               "dashboard": {"dashboard", "engine", "trt", "streamlit"}}
    wrong = [(m, dep) for m, deps in _graph().items() for dep in deps
             if dep.split(".")[0] not in allowed[m.split(".")[0]]]
    assert not wrong, f"imports against the layers: {wrong}"


def test_no_import_circles():
    graph = _graph()
    # Tarjan's strongly connected components; any component of 2+ modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                connect(w)
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
            # A package and the submodules its __init__ re-exports are one unit, not a circle.
            if len(component) > 1 and not _package_and_its_own(component):
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    assert not circles, f"import circles: {circles}"


def _package_and_its_own(component: list[str]) -> bool:
    roots = [m for m in component if all(o == m or o.startswith(m + ".") for o in component)]
    return bool(roots)


def test_the_import_graph_is_read():
    """The two tests above would pass vacuously if the graph were empty or missed edges."""
    graph = _graph()
    assert "engine.inference.predictor" in graph["engine.inference.backends"]
    assert "engine.images.contract" in graph["trt.bundle"]
    assert "streamlit" in graph["dashboard.app"]
    assert len(graph) > 80


def test_no_import_path_edits():
    """The project is installed (make install): nothing edits sys.path or PYTHONPATH to find
    it, so every entry point imports the same code the same way."""
    edits = [f"{path.relative_to(ROOT)}:{n}"
             for folder in (*PACKAGES, "tests", "bench", "testkit")
             for path in (ROOT / folder).rglob("*.py") if path.name != "conftest.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if ("sys.path." in line or '"PYTHONPATH"' in line) and "edits = " not in line
             and "in line" not in line]
    assert not edits, f"path edits: {edits}"

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


# --- inside engine: layers that hold, and imports in functions only to keep PyTorch lazy ------

# Lowest first; a module may import its own layer and those below, never one above. The
# longest matching prefix places a module (engine.hosting.classroom sits above the queue it
# reports on; the rest of engine.hosting, the rules, sits on the state).
ENGINE_LAYERS: tuple[tuple[str, ...], ...] = (
    ("engine.lazy", "engine.text", "engine.devices", "engine.threads", "engine.processes",
     "engine.state"),
    ("engine.hosting",),
    ("engine.images", "engine.networks"),
    ("engine.datasets",),
    ("engine.training",),
    ("engine.inference", "engine.evaluation"),
    ("engine.jobs",),
    ("engine.hosting.classroom", "engine.lab"),
    ("engine.service",),
    ("engine.cli", "engine.__main__", "engine"),
)
# What an import inside a function may be there for: loading these only when needed.
HEAVY = {"torch", "torchvision", "onnx", "onnxruntime", "tensorrt", "tensorrt_rtx", "ray",
         "sklearn", "pandas", "scipy", "pynvml", "optuna", "umap", "streamlit"}


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, group in enumerate(ENGINE_LAYERS) for p in group
                if module == p or module.startswith(p + ".")), default=None)
    assert best is not None, f"{module} is in no layer of ENGINE_LAYERS"
    return best[1]


def _lazy_names(path: Path) -> dict[str, str]:
    """A package's lazy_exports map (engine/lazy.py), read from its literal: name -> submodule."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports"
                and len(node.args) == 2 and isinstance(node.args[1], ast.Dict)):
            for key, value in zip(node.args[1].keys, node.args[1].values, strict=True):
                for name in ast.literal_eval(value):
                    out[name] = ast.literal_eval(key)
    return out


def _engine_imports() -> dict[str, tuple[set[str], list[tuple[str, int]]]]:
    """Every engine module: (what it imports at module level, [(what it imports inside a
    function, line)]), each target the module that defines the name (lazy exports followed)."""
    modules = {m: p for m, p in _modules().items() if m.split(".")[0] == "engine"}
    lazy = {m: _lazy_names(p) for m, p in modules.items() if p.name == "__init__.py"}

    def targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join([*parts[:len(parts) - node.level + 1], *filter(None, [base])])
        out = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in modules:
                out.append(sub)
            elif alias.name in lazy.get(base, {}):
                out.append(f"{base}.{lazy[base][alias.name]}")
            else:
                out.append(base)
        return out

    def walk(node: ast.AST, package: str, in_function: bool, top: set[str],
             inner: list[tuple[str, int]]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for t in targets(child, package):
                    if in_function:
                        inner.append((t, child.lineno))
                    else:
                        top.add(t)
            walk(child, package, in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda), top, inner)

    found = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        top: set[str] = set()
        inner: list[tuple[str, int]] = []
        walk(ast.parse(path.read_text()), package, False, top, inner)
        found[name] = (top, inner)
    return found


def _loads_heavy(module: str, graph: dict, seen: set[str]) -> bool:
    """True when importing `module` (its package's __init__ included) loads a HEAVY library."""
    if module.split(".")[0] in HEAVY:
        return True
    if module not in graph or module in seen:
        return False
    seen.add(module)
    parent = module.rpartition(".")[0]
    return (any(_loads_heavy(t, graph, seen) for t in graph[module][0])
            or (parent in graph and _loads_heavy(parent, graph, seen)))


def test_engine_layers_never_import_upward():
    """The queue, hosting's views and the CLI sit on the library, never under it: training,
    datasets, inference and evaluation never import engine.jobs, the state nothing above it."""
    wrong = [f"{m} (layer {layer_of(m)}) -> {t} (layer {layer_of(t)})"
             for m, (top, inner) in _engine_imports().items()
             for t in top | {t for t, _ in inner}
             if t.split(".")[0] == "engine" and layer_of(t) > layer_of(m)]
    assert not wrong, "imports that run back up:\n" + "\n".join(sorted(wrong))


def test_imports_inside_functions_only_keep_pytorch_lazy():
    """An import inside a function is there to load PyTorch (or another heavy library) only
    when needed; one that loads nothing heavy belongs at the top, where a reader sees it."""
    graph = _engine_imports()
    wrong = [f"{_modules()[m].relative_to(ROOT)}:{line} imports {t}"
             for m, (_, inner) in graph.items() for t, line in inner
             if not _loads_heavy(t, graph, set())]
    assert not wrong, "imports inside functions that keep nothing lazy:\n" + "\n".join(wrong)


def test_the_engine_checks_read_the_code():
    """The two tests above would pass vacuously on an empty or misread graph."""
    graph = _engine_imports()
    assert "engine.state.store" in graph["engine.jobs.api"][0]
    assert layer_of("engine.hosting.classroom") > layer_of("engine.jobs") > layer_of(
        "engine.training") > layer_of("engine.hosting.access")
    # `from engine.training import train` inside a function is followed to the trainer,
    # which loads PyTorch: a legitimate lazy import.
    assert "engine.training.trainer" in {t for t, _ in graph["engine.jobs.worker"][1]}
    assert _loads_heavy("engine.training.trainer", graph, set())
    assert not _loads_heavy("engine.training.config", graph, set())


def test_sql_runs_only_in_the_store():
    """engine/state/store/ owns the schema and every query: no SQL text runs anywhere else."""
    store = ROOT / "engine" / "state" / "store"
    calls = [f"{path.relative_to(ROOT)}:{n}"
             for package in PACKAGES for path in (ROOT / package).rglob("*.py")
             if store not in path.parents
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if any(f".{verb}(" in line for verb in ("execute", "executemany", "executescript"))]
    assert not calls, f"SQL outside engine/state/store: {calls}"
    assert any(".execute(" in p.read_text() for p in store.glob("*.py"))  # the check sees SQL


def _names_bound_at_top(path: Path) -> set[str]:
    """The names a module defines at its top level (also inside top-level if/try blocks)."""
    names: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.If, ast.Try)):
            body.extend([*node.body, *node.orelse, *getattr(node, "finalbody", []),
                         *(s for h in getattr(node, "handlers", []) for s in h.body)])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def _unresolved(path: Path, modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Each `from ours import name` in `path` (lazy ones too) whose module or name is gone."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            continue
        if node.module.split(".")[0] not in PACKAGES:
            continue
        where = f"{path.relative_to(root)}:{node.lineno}"
        if node.module not in modules:
            wrong.append(f"{where} imports {node.module}, which does not exist")
            continue
        bound = _names_bound_at_top(modules[node.module]) | set(_lazy_names(modules[node.module]))
        wrong += [f"{where} imports {a.name} from {node.module}, which has no such name"
                  for a in node.names
                  if a.name not in bound and f"{node.module}.{a.name}" not in modules]
    return wrong


def test_every_import_of_ours_resolves():
    """A moved module or name breaks its lazy importers only when they run (a Ray node's
    task, the scheduler's cluster start): read every file's imports, not just the loaded
    ones."""
    modules = _modules()
    files = [p for d in ("engine", "trt", "dashboard", "bench", "testkit", "tests")
             for p in (ROOT / d).rglob("*.py")]
    wrong = [w for p in files for w in _unresolved(p, modules)]
    assert not wrong, "\n".join(wrong)



def test_the_import_check_sees_a_missing_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from engine.datasets import layout\n"
                   "from engine.state import nothing_here\nfrom engine.nowhere import x\n")
    found = sorted(_unresolved(bad, _modules(), tmp_path))
    assert len(found) == 3, found
    assert "bad.py:2 imports layout from engine.datasets" in found[0]
    assert "bad.py:3 imports nothing_here from engine.state" in found[1]
    assert "bad.py:4 imports engine.nowhere, which does not exist" in found[2]


def test_the_job_row_has_every_column_of_the_jobs_table(tmp_path):
    """store.Job is the jobs table typed: a column added by a migration needs its field."""
    import dataclasses

    from engine.state import store

    conn = store.connect(tmp_path)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    finally:
        conn.close()
    assert sorted(columns) == sorted(f.name for f in dataclasses.fields(store.Job))

"""The import graph says what the design says (docs/ARCHITECTURE.md): viz only draws, the result types are plain
data, inference never reaches into the app, the config needs no model."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ifcn_viz"


def _imports(path: Path) -> set[str]:
    """Every ``ifcn_viz`` module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("ifcn_viz")}


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("viz", ("ifcn_viz.train", "ifcn_viz.data", "ifcn_viz.app", "ifcn_viz.gallery")),  # a pure drawing library
        ("inference", ("ifcn_viz.app", "ifcn_viz.viz.", "ifcn_viz.gallery", "ifcn_viz.train")),
        ("model", ("ifcn_viz.inference", "ifcn_viz.viz", "ifcn_viz.app", "ifcn_viz.train")),
    ],
)
def test_layers_do_not_import_upwards(folder, forbidden):
    bad = {}
    for path in sorted((PKG / folder).glob("*.py")):
        if path.name == "commands.py":  # CLI verbs drive their layer and may render with viz
            continue
        hits = sorted(n for n in _imports(path) if n.startswith(forbidden) or n + "." in forbidden)
        if hits:
            bad[path.name] = hits
    assert not bad, f"{folder}/ imports {bad}"


def test_result_types_and_config_are_leaves():
    assert _imports(PKG / "inference" / "types.py") == set()
    assert not {n for n in _imports(PKG / "config.py") if n.startswith("ifcn_viz.model")}


def _runtime_imports(path: Path) -> set[str]:
    """``_imports`` without the ``if TYPE_CHECKING:`` blocks (names for annotations only, never imported)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("ifcn_viz")}


def _module_cycles(folder: str) -> list[list[str]]:
    """The import circles among the modules of one package folder (depth-first search over runtime imports)."""
    pkg = f"ifcn_viz.{folder}"
    paths = {f"{pkg}.{p.stem}": p for p in sorted((PKG / folder).glob("*.py")) if p.stem != "__init__"}
    graph = {m: sorted(n for n in _runtime_imports(p) if n in paths and n != m) for m, p in paths.items()}
    # `from ifcn_viz.model import fc_baseline` names a submodule through the package
    for m, p in paths.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == pkg:
                graph[m] += [f"{pkg}.{a.name}" for a in node.names if f"{pkg}.{a.name}" in paths]
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n) :] + [n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    return cycles


@pytest.mark.parametrize("folder", ["model", "inference", "app", "viz"])
def test_no_import_circles(folder):
    assert _module_cycles(folder) == []


def _literal_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


@pytest.mark.parametrize("folder", ["app", "inference", "viz", "model"])
def test_the_numbers_a_user_can_move_have_one_source(folder):
    """Thresholds, IoUs and ideal logits come from ifcn_viz.config as defaults: no parameter restates one, and no
    slider of the app types its own float range."""
    bad = []
    for path in sorted((PKG / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [*a.posonlyargs, *a.args][-len(a.defaults) :] if a.defaults else []
                pairs = [*zip(params, a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
                for arg, default in pairs:
                    moved = any(w in arg.arg for w in ("threshold", "iou", "logit"))
                    if moved and default is not None and _literal_number(default) and arg.arg != "min_iou":
                        bad.append(f"{path.name}:{node.lineno} {node.name}({arg.arg}=...)")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Slider":
                floats = [v for v in [*node.args, *(k.value for k in node.keywords)]
                          if _literal_number(v) and isinstance(getattr(v, "value", None), float)]  # fmt: skip
                if floats:
                    bad.append(f"{path.name}:{node.lineno} gr.Slider with float literals")
    assert not bad, bad


def test_tabs_import_nothing_from_each_other():
    """One room per tab: a tab module shares only ifcn_viz.app.page (and the views) with the others; the list of
    tabs (tabs/__init__.py) is the one place that names them all."""
    tabs = sorted(p for p in (PKG / "app" / "tabs").glob("*.py") if p.name != "__init__.py")
    assert len(tabs) >= 9
    bad = {p.name: sorted(n for n in _imports(p) if n.startswith("ifcn_viz.app.tabs")) for p in tabs}
    assert not {k: v for k, v in bad.items() if v}, bad
    listed = _imports(PKG / "app" / "tabs" / "__init__.py")
    assert listed == {f"ifcn_viz.app.tabs.{p.stem}" for p in tabs}  # every tab module is listed, and only they


def test_inference_never_imports_the_app_or_the_viz():
    for path in sorted((PKG / "inference").glob("*.py")):
        hits = {n for n in _imports(path) if n.startswith(("ifcn_viz.app", "ifcn_viz.gallery"))}
        if path.name != "commands.py":  # the CLI verb saves its overlay with the viz's renderer
            hits |= {n for n in _imports(path) if n == "ifcn_viz.viz" or n.startswith("ifcn_viz.viz.")}
        assert not hits, (path.name, hits)


MAX_FUNCTION_LINES, MAX_FILE_LINES = 80, 500


@pytest.mark.parametrize("folder", ["app", "inference"])
def test_no_function_over_80_lines_and_no_file_over_500(folder):
    long_files, long_functions = [], []
    for path in sorted((PKG / folder).rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.name}:{node.lineno} {node.name}: {n} lines")
    assert not long_files and not long_functions, long_files + long_functions

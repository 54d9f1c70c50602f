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


def _module_cycles(folder: str) -> list[list[str]]:
    """The import circles among the modules of one package folder (depth-first search over ``_imports``)."""
    pkg = f"ifcn_viz.{folder}"
    paths = {f"{pkg}.{p.stem}": p for p in sorted((PKG / folder).glob("*.py")) if p.stem != "__init__"}
    graph = {m: sorted(n for n in _imports(p) if n in paths and n != m) for m, p in paths.items()}
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

"""The notebooks: committed clean, free of model code, importing only allowed modules, and executing top to bottom.

Execution runs every notebook with nbclient in a fresh ``python3`` kernel -- the interpreter running pytest (the
.venv's), checked by :func:`test_kernel_is_this_interpreter` -- with ``IFCN_NB_FAST=1`` so each notebook's
parameters cell picks its small CI sizes, and ``IFCN_NB_WORKDIR`` pointing at a temporary folder for anything a
notebook writes (datasets, runs).  The widget cells of every notebook are followed by cells that set the widgets'
values and assert on the result, so a passing execution also proves the interactions work.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import time
import warnings
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = (
    "01_why_instance_sensitive.ipynb",
    "02_score_maps_and_assembling.ipynb",
    "03_architecture.ipynb",
    "04_training.ipynb",
    "05_inference.ipynb",
    "06_evaluation.ipynb",
    "07_real_data_gpu.ipynb",
)
CELL_TIMEOUT_S = 150  # one cell (the slowest, a short training run, takes ~35 s on 2 busy CPU cores)
NOTEBOOK_TIMEOUT_S = 300  # one notebook; all seven take a few minutes

# Top-level modules a notebook may import besides the standard library: the package and the usual scientific /
# plotting / widget stack it is built on.  Anything else (``tests``, a private helper, a model zoo) fails.
ALLOWED_IMPORTS = {"ifcn_viz", "numpy", "torch", "matplotlib", "ipywidgets", "IPython", "PIL", "scipy", "pycocotools"}

# Layers that would mean a notebook builds (part of) a model itself instead of importing it from ifcn_viz.
LAYER_NAMES = {"Conv2d", "ConvTranspose2d", "Linear", "Sequential", "BatchNorm2d", "Conv1d", "Conv3d", "Module"}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _code_cells(nb: dict) -> list[str]:
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def _parse(source: str, where: str) -> ast.Module:
    """Parse a code cell; IPython magics and shell escapes (``%...``, ``!...``) are blanked first."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError as err:
        raise AssertionError(f"{where}: a code cell is not valid Python: {err}") from err


def _model_code(tree: ast.Module) -> list[str]:
    """Descriptions of every model-building construct in ``tree`` (empty when there is none)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.split(".")[-1] in LAYER_NAMES or b.endswith("Module") for b in bases):
                found.append(f"class {node.name}({', '.join(bases)})")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "forward":
            found.append(f"def forward (line {node.lineno})")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.split(".")[-1] in LAYER_NAMES and ("nn." in name or name in LAYER_NAMES):
                found.append(f"{name}(...) (line {node.lineno})")
    return found


def _imports(tree: ast.Module) -> set[str]:
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            mods.add("." if node.level else (node.module or "").split(".")[0])
    return mods


def test_all_notebooks_present() -> None:
    names = [p.name for p in _notebooks()]
    assert names == sorted(EXPECTED), f"notebooks/ holds {names}; expected {sorted(EXPECTED)}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = _load(path)
    assert nb.get("nbformat") == 4, f"{path.name}: not an nbformat-4 notebook"
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear them before committing"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: saved widget state in the metadata; clear it"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel must be python3"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_defines_no_model_code(path: Path) -> None:
    for i, source in enumerate(_code_cells(_load(path))):
        found = _model_code(_parse(source, f"{path.name} code cell {i}"))
        assert not found, f"{path.name} code cell {i} defines model code (import it from ifcn_viz instead): {found}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_imports_only_ifcn_viz_and_standard_libraries(path: Path) -> None:
    allowed = ALLOWED_IMPORTS | set(sys.stdlib_module_names)
    used = set()
    for i, source in enumerate(_code_cells(_load(path))):
        used |= _imports(_parse(source, f"{path.name} code cell {i}"))
    assert "ifcn_viz" in used, f"{path.name} does not use ifcn_viz at all"
    others = sorted(ALLOWED_IMPORTS - {"ifcn_viz"})
    assert used <= allowed, f"{path.name} imports {sorted(used - allowed)}; allowed: ifcn_viz, stdlib, {others}"


def test_checks_catch_model_code_and_foreign_imports() -> None:
    """The detectors above must fire on the things they are meant to refuse."""
    bad = "import torch\nfrom torch import nn\nclass Head(nn.Module):\n    def forward(self, x):\n        return x\n"
    assert len(_model_code(ast.parse(bad))) == 2
    assert _model_code(ast.parse("layer = torch.nn.Conv2d(3, 8, 3)")) == ["torch.nn.Conv2d(...) (line 1)"]
    assert _model_code(ast.parse("y = torch.nn.functional.conv2d(x, w)\nplt.plot(x)")) == []
    assert _imports(ast.parse("from tests.helpers import make\nimport numpy as np")) == {"tests", "numpy"}
    assert _parse("%matplotlib inline\nx = 1", "magic").body  # magics do not break the parse


def test_kernel_is_this_interpreter() -> None:
    """The ``python3`` kernel nbclient starts must run this interpreter (the .venv's), not some other python."""
    from jupyter_client import KernelManager

    cmd = KernelManager(kernel_name="python3").format_kernel_cmd()
    assert Path(cmd[0]).resolve() == Path(sys.executable).resolve(), f"kernel runs {cmd[0]}, tests run {sys.executable}"


def _sliced(get_msg, slice_s: float = 1.0):
    """Wrap a channel's async ``get_msg(timeout)`` to poll in short slices until its deadline.

    On busy machines the client's zmq.asyncio poll sometimes misses the wake-up of a message that has arrived (both
    processes then sit idle, and the message is only read when the poll's full timeout expires and it checks the
    socket again; cf. jupyter/jupyter_client#922).  Re-polling every ``slice_s`` turns such a stall into a delay of
    at most ``slice_s`` without changing any timeout.
    """
    from queue import Empty

    async def get(timeout: float | None = None, **kwargs):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, min(slice_s, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left, **kwargs)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get


def _client(nbclient, nb, **kwargs):
    class SlicedPollClient(nbclient.NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):
                channel.get_msg = _sliced(channel.get_msg)
            return kc

    return SlicedPollClient(nb, **kwargs)


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.timeout(2 * NOTEBOOK_TIMEOUT_S + 60)
@pytest.mark.parametrize("name", EXPECTED, ids=lambda n: Path(n).stem)
def test_notebook_executes(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = NOTEBOOK_DIR / name
    assert path.is_file(), f"missing notebook {path}"
    monkeypatch.setenv("IFCN_NB_FAST", "1")  # the kernel inherits this environment
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for attempt in (1, 2):
        monkeypatch.setenv("IFCN_NB_WORKDIR", str(tmp_path / f"attempt{attempt}"))
        nb = nbformat.read(path, as_version=4)
        client = _client(
            nbclient,
            nb,
            kernel_name="python3",
            timeout=CELL_TIMEOUT_S,
            startup_timeout=120,
            resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        )
        start = time.perf_counter()
        try:
            client.execute()
        except nbclient.exceptions.CellTimeoutError as err:
            # Seen on loaded machines with ipykernel 6 and 7 alike: kernel and client both idle, an execute
            # message lost between them (jupyter/jupyter_client#922, ipython/ipykernel#1554).  A fresh kernel
            # gets one more try; a genuinely slow cell times out again and fails.
            if attempt == 2:
                pytest.fail(f"{name}: a cell timed out twice:\n{_strip_ansi(str(err))[-2000:]}")
            warnings.warn(
                f"{name}: a cell timed out after {CELL_TIMEOUT_S} s; retrying with a fresh kernel", stacklevel=1
            )
            continue
        except nbclient.exceptions.CellExecutionError as err:
            pytest.fail(f"{name} failed:\n{_strip_ansi(str(err))[-4000:]}")
        break
    elapsed = time.perf_counter() - start
    print(f"{name}: {elapsed:.1f} s")
    assert elapsed < NOTEBOOK_TIMEOUT_S, f"{name} took {elapsed:.0f} s; the CI budget is {NOTEBOOK_TIMEOUT_S} s"
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, f"{name}: error outputs {[(e['ename'], e['evalue']) for e in errors]}"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# ---------------------------------------------------------------------------------------------- widget callbacks
# In JupyterLab, what a widget callback prints or displays goes to an ipywidgets.Output only if it runs inside
# ``with out:`` or under ``@out.capture(...)``; otherwise it goes nowhere (the cell that registered it has finished).
# ``interact`` / ``interactive`` / ``interactive_output`` run their function inside their own Output already
# (ipywidgets/widgets/interaction.py: ``with self.out:`` in ``interactive.update``, ``with out:`` in
# ``interactive_output``), so their targets are safe -- provided the interactive widget itself is displayed.
REGISTRARS = {"observe", "on_click", "on_submit", "on_msg"}
INTERACTIVE = {"interactive", "interact_manual", "interact", "interactive_output"}
DRAWING_NAMES = {"print", "display", "clear_output", "display_markdown", "display_html", "display_png"}
PLOT_MODULES = {"plt", "pyplot"}


def _call_name(node: ast.Call) -> str:
    return ast.unparse(node.func)


def _is_drawing_call(node: ast.Call) -> bool:
    name = _call_name(node)
    parts = name.split(".")
    return name in DRAWING_NAMES or parts[0] in PLOT_MODULES or parts[-1] in {"show", "savefig"} and len(parts) > 1


def _output_names(trees: list[ast.Module]) -> set[str]:
    """Expressions (unparsed) assigned an ``ipywidgets.Output(...)`` anywhere in the notebook."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
                if _call_name(node.value).split(".")[-1] == "Output":
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {ast.unparse(t) for t in targets}
    return names


def _unguarded_drawing(body: list[ast.AST], functions: dict, outputs: set[str], seen: set[str]) -> list[str]:
    """Drawing calls in ``body`` (following calls into the notebook's own functions) outside ``with <Output>:``."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.With, ast.AsyncWith)):
            if any(ast.unparse(item.context_expr) in outputs for item in node.items):
                return  # everything inside goes to the Output
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return  # defining a function draws nothing; calling it is followed below
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if _is_drawing_call(node):
                found.append(f"{name}(...) (line {node.lineno})")
            elif name in functions and name not in seen:
                fn = functions[name]
                if not _captured(fn, outputs):
                    inner = _unguarded_drawing(fn.body, functions, outputs, seen | {name})
                    found.extend(f"{name}() -> {d}" for d in inner)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in body:
        visit(stmt)
    return found


def _captured(fn: ast.FunctionDef, outputs: set[str]) -> bool:
    """``fn`` is decorated with ``@<Output>.capture(...)``."""
    for dec in fn.decorator_list:
        call = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(call, ast.Attribute) and call.attr == "capture" and ast.unparse(call.value) in outputs:
            return True
    return False


def widget_callback_problems(sources: list[str], where: str = "notebook") -> list[str]:
    """Every widget callback of a notebook (its code cells ``sources``) whose output would go nowhere, and every
    interactive widget that is never displayed; empty when there is none."""
    trees = [_parse(s, f"{where} code cell {i}") for i, s in enumerate(sources)]
    functions = {
        n.name: n for t in trees for n in ast.walk(t) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    outputs = _output_names(trees)
    problems = []
    for i, tree in enumerate(trees):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if isinstance(node.func, ast.Attribute) and node.func.attr in REGISTRARS:
                handlers = node.args[:1] + [kw.value for kw in node.keywords if kw.arg in ("handler", "callback")]
                for h in handlers:
                    label = f"{where} cell {i}: {name}({ast.unparse(h)})"
                    if isinstance(h, ast.Lambda):
                        bad = _unguarded_drawing([h.body], functions, outputs, set())
                    elif isinstance(h, ast.Name) and h.id in functions:
                        fn = functions[h.id]
                        bad = [] if _captured(fn, outputs) else _unguarded_drawing(fn.body, functions, outputs, {h.id})
                    else:
                        problems.append(f"{label}: cannot check a callback that is not a notebook function")
                        continue
                    problems += [f"{label}: {b} outside any `with <Output>:`" for b in bad]
    # an interactive widget draws into its own Output, which must itself be shown
    shown = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in DRAWING_NAMES | {
                "VBox",
                "HBox",
                "widgets.VBox",
                "widgets.HBox",
                "Tab",
                "Accordion",
            }:
                shown |= {ast.unparse(a) for arg in node.args for a in ast.walk(arg)}
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            shown.add(ast.unparse(tree.body[-1].value))
    for i, tree in enumerate(trees):
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and _call_name(node.value).split(".")[-1] in {"interactive", "interactive_output"}):  # fmt: skip
                for t in node.targets:
                    if ast.unparse(t) not in shown:
                        problems.append(f"{where} cell {i}: {ast.unparse(t)} = {_call_name(node.value)}(...) is never "
                                        f"displayed, so its function's output goes nowhere")  # fmt: skip
    return problems


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_widget_callbacks_draw_into_outputs(path: Path) -> None:
    """Every widget callback's prints / displays / plots land in an ipywidgets.Output (see the comment above)."""
    problems = widget_callback_problems(_code_cells(_load(path)), path.name)
    assert not problems, "widget output that would go nowhere in JupyterLab:\n" + "\n".join(problems)


def test_widget_callback_check_catches_output_going_nowhere() -> None:
    """The detector must fire on the cases it is meant to refuse and pass the idioms that work."""
    helper = "def show(x):\n    display(x)\n"
    bad_direct = "def on_change(change):\n    print(change)\nw.observe(on_change, names='value')\n"
    bad_helper = helper + "def on_click(b):\n    show(1)\nbutton.on_click(on_click)\n"
    bad_lambda = "w.observe(lambda ch: plt.plot([1, 2]))\n"
    unknown = "w.observe(handlers.thing)\n"
    hidden = "def f(x):\n    print(x)\nui = interactive(f, x=slider)\n"
    assert len(widget_callback_problems([bad_direct])) == 1
    assert len(widget_callback_problems([helper, bad_helper])) == 1
    assert len(widget_callback_problems([bad_lambda])) == 1
    assert len(widget_callback_problems([unknown])) == 1
    assert len(widget_callback_problems([hidden])) == 1
    good_with = "out = Output()\n" + helper + "def on_change(change):\n    with out:\n        show(change)\n"
    good_with += "w.observe(on_change, names='value')\ndisplay(out)\n"
    good_capture = "out = Output()\n@out.capture(clear_output=True)\ndef cb(b):\n    print(b)\nbutton.on_click(cb)\n"
    good_values = "def sync(change):\n    other.value = change['new']\nw.observe(sync, names='value')\n"
    good_interactive = "def f(x):\n    print(x)\nui = interactive(f, x=slider)\ndisplay(ui)\n"
    for good in (good_with, good_capture, good_values, good_interactive):
        assert widget_callback_problems([good]) == [], good

"""The package's layers: cluebench/tasks/ (what a task is: no Paddle), cluebench/train/ (one training run:
Paddle) and cluebench/grid/ (the grid and what is read off it: no Paddle). The task layer and the grid never
import Paddle, PaddleNLP or the training layer, not even inside a function, and no module imports itself
back through others."""

import ast
import os
import subprocess
import sys

from helpers import ROOT

import pytest

PACKAGE = os.path.join(ROOT, "cluebench")
FORBIDDEN = (
    "paddle",
    "paddlenlp",
    "cluebench.train",
    "cluebench.synthetic",
    "cluebench.check",
    "cluebench.demo",
)  # the last three import Paddle


def module_name(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel.removesuffix(".__init__")


def modules():
    """{module name: path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                found[module_name(os.path.join(folder, name))] = os.path.join(folder, name)
    return found


def imports(name, path):
    """Every module an import statement of the file names, anywhere in it (functions included), resolved."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # a submodule, or a name (filtered below)
    return found


ALL = modules()


@pytest.mark.parametrize("layer", ["tasks", "grid"])
def test_the_task_layer_and_the_grid_import_no_paddle_nor_training(layer):
    bad = [
        f"{os.path.relpath(path, ROOT)} imports {imported}"
        for name, path in sorted(ALL.items())
        if name.startswith(f"cluebench.{layer}")
        for imported in sorted(imports(name, path))
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert not bad, "\n".join(bad)


def test_importing_every_module_of_tasks_and_grid_loads_no_paddle():
    names = sorted(n for n in ALL if n.startswith(("cluebench.tasks", "cluebench.grid")) and not n.endswith("__main__"))
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {names!r}]; "
        "print(sorted(m for m in ('paddle', 'paddlenlp') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout == "[]\n", proc.stderr[-2000:]


def test_no_import_cycles():
    graph = {
        name: sorted(m for m in imports(name, path) if m in ALL and m != name and not name.startswith(m + "."))
        for name, path in ALL.items()
    }
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert len(state) == len(ALL) > 30

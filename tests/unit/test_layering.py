"""The house rules of the package, checked on the source with ``ast`` (imports inside functions count too):

* packages import only downward in the documented order (README "Development"); the ground floor (errors, paths,
  cross-sectional math, stage I/O) imports nothing above it;
* no stage imports another stage: only ``pipeline.py`` and ``cli.py`` call ``run_<stage>`` functions;
* there are no import cycles between packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "quantsam"

#: the documented order, lowest first; a module may import its own level and any level below it
LAYERS = [
    {"errors", "paths", "crosssection", "stageio", "progress", "jobresult"},
    {"optim", "models"},
    {"contrib"},  # adapters into other frameworks (qlib): the optimizers only
    {"config"},
    {"data"},
    {"features"},
    {"tracking"},
    {"train"},
    {"signals"},
    {"factor_test"},
    {"portfolio"},
    {"backtest"},
    {"report"},
    {"pipeline", "cli", "__main__", "__init__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}
ORCHESTRATORS = {"pipeline", "cli", "__main__"}


def top(module_path: Path) -> str:
    """The package (or top-level module) a source file belongs to: ``train`` for train/stage.py."""
    rel = module_path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[str]:
    """Every ``quantsam.*`` module imported anywhere in the file (absolute imports; the package uses no others)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("quantsam")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("quantsam"):
            assert node.level == 0, f"{path}: relative import"
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]  # `from quantsam import stageio`
    return out


FILES = sorted(SRC.rglob("*.py"))


def test_every_package_has_a_level():
    missing = {top(f) for f in FILES} - set(LEVEL)
    assert not missing, f"add {missing} to LAYERS (and to the README's layering rule)"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path):
    me = top(path)
    for mod in imports(path):
        parts = mod.split(".")
        if len(parts) < 2 or parts[1] not in LEVEL:
            continue  # `from quantsam import <name>` resolved through its parts, or the package itself
        target = parts[1]
        assert LEVEL[target] <= LEVEL[me], f"{path.relative_to(SRC)} imports {mod}: {target} is above {me}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_stage_imports_another_stage(path):
    me = top(path)
    if me in ORCHESTRATORS:
        return
    for mod in imports(path):
        parts = mod.split(".")
        if len(parts) >= 3 and parts[2] == "stage" and parts[1] != me:
            pytest.fail(f"{path.relative_to(SRC)} imports {mod}: only pipeline.py / cli.py call stages")


def test_no_import_cycles_between_packages():
    graph: dict[str, set[str]] = {}
    for f in FILES:
        me = top(f)
        for mod in imports(f):
            parts = mod.split(".")
            if len(parts) >= 2 and parts[1] in LEVEL and parts[1] != me:
                graph.setdefault(me, set()).add(parts[1])
    seen, stack = set(), []

    def visit(n: str) -> None:
        if n in stack:
            pytest.fail(f"import cycle: {' -> '.join(stack[stack.index(n):] + [n])}")
        if n in seen:
            return
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            visit(m)
        stack.pop()
        seen.add(n)

    for n in sorted(graph):
        visit(n)


#: stage modules that still write their own lock / done-check / manifest: none since issue 22 (folders go through
#: stageio.run_cached, in-place work — training's units and assembly — through stageio.run_in_place); a module
#: listed here must still need the exemption (the test below fails otherwise)
RITUAL_NOT_YET_MOVED: set[str] = set()
RITUAL = {"OutputDir", "locked", "write_manifest"}


def _ritual_calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in RITUAL:
                out.add(name)
    return out


def test_only_stageio_performs_the_cached_run_ritual():
    """The cached-run ritual (lock, done-check, all-or-nothing folder or in-place outputs, manifest) lives in
    ``stageio.run_cached`` / ``stageio.run_in_place``; every stage only declares its key and computes."""
    stages = ("data", "train", "signals", "factor_test", "backtest", "report")
    doing = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if (p.parent.name in stages or p.name in ("pipeline.py", "cli.py")) and _ritual_calls(p)}
    assert doing <= RITUAL_NOT_YET_MOVED, f"the ritual written by hand in {sorted(doing - RITUAL_NOT_YET_MOVED)}"
    assert RITUAL_NOT_YET_MOVED <= doing, f"moved already, drop the exemption: {sorted(RITUAL_NOT_YET_MOVED - doing)}"


def test_no_stage_module_imports_mlflow():
    """MLflow is tracking/'s business: stages talk to a Tracker."""
    offenders = []
    for p in SRC.rglob("*.py"):
        if p.parent.name == "tracking":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m == "mlflow" or m.startswith("mlflow.") for m in mods):
                offenders.append(str(p.relative_to(SRC)))
    assert not offenders, offenders

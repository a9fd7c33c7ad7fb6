"""The layering of docs/architecture.md, checked mechanically on the source (no imports run).

Every module's imports are read with ``ast``. The rules:

* a module imports only its own layer and the layers that ``ALLOWED`` lists below it, so
  imports and data flow one way (support -> formats -> core -> control, baselines ->
  estimators -> study -> cli; the engine beside them, knowing only support and formats);
* an import of a weightsynth module sits at module level, never inside a function or a
  class, so no cycle can hide behind a deferred import. Two exceptions: ``cli.py``, the
  entry point, loads each subcommand's layer when that subcommand runs (so ``--help`` and
  ``--version`` start fast), and ``if TYPE_CHECKING:`` blocks, which never run;
* an import inside a function is allowed only for the heavy or optional third-party
  packages in ``LAZY_OK`` (a function that needs Dask, matplotlib or scikit-learn imports
  it where it is used, so ``import weightsynth`` stays light);
* the module-level import graph has no cycle;
* every ``file: name`` that docs/derivation.md and docs/architecture.md give as the owner of
  an equation exists.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "src" / "weightsynth"

#: top-level entry of the package -> layer
LAYER_OF = {
    "_version": "support", "errors": "support", "_validation": "support",
    "_cache": "support", "_deprecation": "support", "_interrupt": "support",
    "_files": "support",
    "formats": "formats", "core": "core", "control": "control", "baselines": "baselines",
    "engine": "engine", "study": "study", "cli": "cli", "__init__": "face",
    "estimators": "estimators",
}
#: layer -> the other layers it may import (its own is always allowed)
ALLOWED = {
    "support": set(),
    "formats": {"support"},
    "core": {"support", "formats"},
    "control": {"support", "formats", "core"},
    "baselines": {"support", "core"},
    "estimators": {"support", "formats", "core", "control"},
    "engine": {"support", "formats"},
    "study": {"support", "formats", "core", "control", "baselines", "estimators", "engine"},
    "cli": {"support", "formats", "core", "control", "baselines", "estimators", "engine",
            "study", "face"},
    "face": {"support", "formats", "core", "control", "baselines", "estimators", "engine",
             "study"},
}
#: third-party packages a function may import where it uses them (heavy or optional)
LAZY_OK = {"jax", "dask", "distributed", "rich", "tqdm", "sklearn", "matplotlib", "scipy",
           "pandas", "pyarrow", "casadi", "psutil",
           "diffrax",  # 0.6 s to import, needed only to trace a solve (core.ode.diffrax)
           "fcntl"}  # POSIX only: the sweep store's driver lock degrades without it
#: modules allowed to import weightsynth modules inside functions (entry points)
DEFERRED_OK = {"weightsynth.cli"}
#: known violations, each being removed: (module, imported module) -> why it is still here.
#: The test fails when an entry is no longer needed, so the list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return LAYER_OF["__init__" if len(parts) == 1 else parts[1]]


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The weightsynth modules an import statement loads (empty for other packages)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            is_pkg = MODULES[module].name == "__init__.py"
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_pkg else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # ``from pkg import sub`` loads pkg.sub when sub is a module, else pkg itself
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                 for a in node.names]
    return sorted({n for n in names if n.split(".")[0] == "weightsynth"})


def _top_package(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    return [] if node.level else [(node.module or "").split(".")[0]]


class _Imports(ast.NodeVisitor):
    """Collects (import node, deferred?) pairs; deferred = inside a function or class.

    ``if TYPE_CHECKING:`` bodies are skipped: they never run.
    """

    def __init__(self):
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
        self.depth = 0

    def _scope(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _scope

    def visit_If(self, node):
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node):
        self.found.append((node, self.depth > 0))

    visit_ImportFrom = visit_Import


def _imports(module: str):
    v = _Imports()
    v.visit(ast.parse(MODULES[module].read_text(), str(MODULES[module])))
    return v.found


IMPORTS = {m: _imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    for m in MODULES:
        assert _layer(m) in ALLOWED, m


def test_no_module_imports_a_higher_layer():
    bad = []
    for m, found in IMPORTS.items():
        for node, _ in found:
            for target in _resolve(m, node):
                src, dst = _layer(m), _layer(target)
                if dst != src and dst not in ALLOWED[src] and (m, target) not in KNOWN:
                    bad.append(f"{MODULES[m].relative_to(ROOT)}:{node.lineno} ({src}) "
                               f"imports {target} ({dst})")
    assert not bad, "\n".join(bad)


def test_no_weightsynth_import_is_deferred_into_a_function():
    bad, used = [], set()
    for m, found in IMPORTS.items():
        if m in DEFERRED_OK:
            continue
        for node, deferred in found:
            for target in _resolve(m, node) if deferred else []:
                if (m, target) in KNOWN:
                    used.add((m, target))
                else:
                    bad.append(f"{MODULES[m].relative_to(ROOT)}:{node.lineno} imports "
                               f"{target} inside a function: import it at module level")
    assert not bad, "\n".join(bad)
    stale = set(KNOWN) - used
    assert not stale, f"no longer needed, remove from KNOWN: {sorted(stale)}"


def test_deferred_third_party_imports_are_heavy_or_optional():
    stdlib = sys.stdlib_module_names
    bad = []
    for m, found in IMPORTS.items():
        if m in DEFERRED_OK:
            continue
        for node, deferred in found:
            for top in _top_package(node) if deferred else []:
                if top != "weightsynth" and top not in LAZY_OK:
                    kind = "the standard library" if top in stdlib else "a light package"
                    bad.append(f"{MODULES[m].relative_to(ROOT)}:{node.lineno}: {top} is "
                               f"{kind}; import it at module level")
    assert not bad, "\n".join(bad)


def test_module_import_graph_has_no_cycle():
    graph = {m: {t for node, deferred in found if not deferred for t in _resolve(m, node)
                 if t != m}
             for m, found in IMPORTS.items()}
    state: dict[str, int] = {}   # 1: on the stack, 2: done

    def visit(m, stack):
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_engine_names_nothing_of_the_study():
    """The engine finds protocols through entry points, never by naming the study."""
    for path in (PKG / "engine").glob("*.py"):
        code = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("#"))
        tree = ast.parse(code)
        strings = [n.value for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        for s in strings:
            assert "weightsynth.study" not in s and "weightsynth.core" not in s, (path, s)


_OWNER = re.compile(r"\b((?:core|control|baselines|engine|study|formats)/\w+\.py): "
                    r"([A-Za-z_][\w.]*(?:, [A-Za-z_][\w.]*)*)")


@pytest.mark.parametrize("doc", ["derivation.md", "architecture.md"])
def test_equation_owners_named_in_the_docs_exist(doc):
    text = (ROOT / "docs" / doc).read_text()
    owners = _OWNER.findall(text)
    assert len(owners) >= 10, owners
    missing = []
    for rel, names in owners:
        path = PKG / rel
        if not path.is_file():
            missing.append(rel)
            continue
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        for name in names.split(", "):
            if name.split(".")[-1] not in defined or name.split(".")[0] not in defined:
                missing.append(f"{rel}: {name}")
    assert not missing, f"docs/{doc} names owners that do not exist: {missing}"

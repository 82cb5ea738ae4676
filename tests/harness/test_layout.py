"""The layout holds: a package root of few modules, no import circles, every function-level
import with its reason, one folder and one spec file per op family, ``spec/`` importable only
as ``mixology.spec``, and a short README."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

from mixology import registry
from mixology.ops import FAMILIES

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mixology"


def _modules() -> dict[str, pathlib.Path]:
    """mixology's modules by dotted name; spec/ is mixology.spec."""
    found = {}
    for base, prefix in ((PACKAGE, "mixology"), (ROOT / "spec", "mixology.spec")):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            if base == PACKAGE and rel.parts[0] == "spec":
                continue  # the link to spec/, read from spec/ itself
            parts = [prefix, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _module_level_imports(path: pathlib.Path, known) -> set[str]:
    """The mixology modules ``path`` imports when it is imported: every import outside a
    function body (class bodies and module-level ifs included)."""
    out = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names if a.name in known)
            elif isinstance(child, ast.ImportFrom) and child.module:
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    out.add(sub if sub in known else child.module)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in out if m in known}


def test_the_package_root_has_at_most_8_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, root


def test_no_module_level_import_circles():
    modules = _modules()
    graph = {name: _module_level_imports(path, modules) for name, path in modules.items()}
    state, stack = {}, []

    def walk(name):
        state[name] = "open"
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                walk(dep)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name)


def test_every_function_level_import_says_why():
    """Imports inside functions are only for optional dependencies and start-up cost, and a
    comment on the line or just above the block of imports says which."""
    missing = []
    for path in _modules().values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    i = sub.lineno - 2
                    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
                        i -= 1
                    if "#" not in lines[sub.lineno - 1] and not lines[i].strip().startswith("#"):
                        missing.append(f"{path.relative_to(ROOT)}:{sub.lineno}")
    assert not missing, f"function-level imports without a reason: {sorted(set(missing))}"


@pytest.mark.parametrize("family", FAMILIES)
def test_an_op_family_is_one_folder_and_one_spec_file(family):
    assert (ROOT / "spec" / f"{family}.py").exists(), f"spec/{family}.py is missing"
    folder = f"mixology.ops.{family}."
    ops = {o for o, op in registry.OPS.items()
           for impl in op.impls.values() if str(impl.target).startswith(folder)}
    assert ops, f"mixology/ops/{family} registers no implementation"
    for op in ops:
        outside = [n for n, impl in registry.OPS[op].impls.items()
                   if not str(impl.target).startswith(folder)]
        assert not outside, f"{op}'s implementations {outside} live outside its folder"


def test_every_spec_file_is_a_family_or_shared():
    shared = {"__init__", "strategies", "helpers", "numerics", "generic", "lab", "circuits"}
    stray = {p.stem for p in (ROOT / "spec").glob("*.py")} - shared - set(FAMILIES)
    assert not stray, f"spec files of no op family: {stray}"


def test_spec_imports_only_as_mixology_spec(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for cwd in (ROOT, tmp_path):
        bad = subprocess.run([sys.executable, "-c", "import spec"], cwd=cwd, env=env,
                             capture_output=True, text=True)
        assert bad.returncode != 0, f"`import spec` works from {cwd}"
    good = subprocess.run([sys.executable, "-c", "import mixology.spec as s; s.load(); "
                           "print(len(s.PROPERTIES))"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert good.returncode == 0 and int(good.stdout) > 100, good.stderr


def test_the_readme_has_at_most_300_lines():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= 300, f"README.md has {n} lines; depth goes in docs/"

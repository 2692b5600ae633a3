"""The package is a layered core without import cycles: every module imports on its own and in any order, and no
function hides an import of the package (the usual way to dodge a cycle) unless it is an optional heavy one."""
import ast
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tempscale

PACKAGE_DIR = Path(tempscale.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(tempscale.__path__, "tempscale.")
                 if not m.name.endswith("__main__"))   # importing __main__ runs the CLI

# (module, imported module) pairs allowed inside functions: optional heavy dependencies only.
ALLOWED_FUNCTION_IMPORTS: set[tuple[str, str]] = set()

# Third-party modules preloaded by the helper below before it forks one child per module: they cost seconds to
# import and cannot take part in a cycle of the package.
WARM = ("torch", "numpy", "pandas", "matplotlib.pyplot", "scipy", "sklearn", "timm", "torchattacks")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                          cwd=PACKAGE_DIR.parent)


ORDERS = {"alphabetical": MODULES, "reverse": MODULES[::-1]}


@pytest.fixture(scope="module")
def import_trials() -> dict:
    """One helper process loads only third-party libraries, then forks a child per trial, where no module of the
    package was imported before: each module alone, and all modules in one process in either order. Returns
    {"alone": [failed modules], "alphabetical": ok?, "reverse": ok?} and the helper's output."""
    result = _run(f"""
        import importlib, json, os, sys, traceback
        for name in {WARM!r}:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        assert not any(m == "tempscale" or m.startswith("tempscale.") for m in sys.modules)

        def in_child(names):
            pid = os.fork()
            if pid == 0:
                try:
                    for name in names:
                        importlib.import_module(name)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

        trials = {{"alone": [name for name in {MODULES!r} if not in_child([name])]}}
        trials.update({{order: in_child(names) for order, names in {ORDERS!r}.items()}})
        print(json.dumps(trials))
    """)
    assert result.returncode == 0, result.stderr[-6000:]
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "output": result.stderr[-6000:]}


def test_every_module_imports_alone(import_trials):
    """Each module in a process where no module of the package was imported before."""
    assert import_trials["alone"] == [], import_trials["output"]


@pytest.mark.parametrize("order", ORDERS)
def test_all_modules_import_in_one_process_in_either_order(import_trials, order):
    assert import_trials[order], import_trials["output"]


def _module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _function_level_package_imports(path: Path, package_dir: Path = PACKAGE_DIR) -> list[tuple[int, str]]:
    """(line, imported module) for each import of the package inside a function body."""
    module = _module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for func in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target == "tempscale" or target.startswith("tempscale."):
                    found.append((node.lineno, target))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names
                          if a.name == "tempscale" or a.name.startswith("tempscale.")]
    return found


def test_the_ast_check_sees_relative_and_absolute_imports(tmp_path):
    sample = PACKAGE_DIR / "methods" / "base.py"
    assert _function_level_package_imports(sample) == []
    fake = tmp_path / "tempscale" / "sub" / "mod.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..runs import Run\n    from . import x\n    import tempscale.io\n"
                    "    import numpy\n")
    assert _function_level_package_imports(fake, tmp_path / "tempscale") == [
        (2, "tempscale.runs"), (3, "tempscale.sub"), (4, "tempscale.io")]


def test_no_function_level_imports_of_the_package():
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module = _module_name(path)
        for line, target in _function_level_package_imports(path):
            if (module, target) not in ALLOWED_FUNCTION_IMPORTS:
                offenders.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target}")
    assert not offenders, "imports inside functions (move them to the top; a cycle means a layer is wrong):\n" + \
        "\n".join(offenders)


def test_the_lock_leaves_out_the_iri_grammar():
    """jsonschema imports rfc3987-syntax whenever it is installed, which builds a grammar in every process that
    imports nbformat (README: "Updating the pins"); regenerating the lock must keep it out."""
    lock = (PACKAGE_DIR.parents[1] / "requirements.txt").read_text().splitlines()
    assert [line for line in lock if line.startswith(("rfc3987-syntax==", "lark=="))] == []


def test_the_package_imports_its_parts_on_first_use():
    """`import tempscale` loads nothing heavy (the papermill launcher of every notebook imports it), and each public
    name, submodule and registry is there when first used."""
    result = _run("""
        import sys
        import tempscale.papermill_ipc
        print(sorted(m for m in ("torch", "matplotlib", "scipy", "pandas") if m in sys.modules))
        import tempscale as ts
        assert ts.get_profile("smoke").name == "smoke" and ts.Attack.PGD20 == "pgd20"
        assert {"train_grid", "audit_grid", "write_table"} <= set(dir(ts))
        assert "ldd" in ts.methods.METHODS and ts.attacks.attack_names()
        try:
            ts.no_such_name
        except AttributeError as error:
            print(error)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "module 'tempscale' has no attribute 'no_such_name'"]

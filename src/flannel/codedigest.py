"""Which package modules a workflow script runs, and a digest of their code: the param that reruns a rule
when that code changes (Snakemake tracks a script's own modification time, not the modules it imports).

The modules are derived from the import statements (every one, also those inside functions), followed
through the package; the digest covers their syntax trees without docstrings, so a comment or docstring
edit reruns nothing while any change to what runs reruns exactly the rules whose scripts reach it.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "flannel"


def _path(name: str, package_dir: Path) -> Path | None:
    """The file of module `name` (dotted, inside the package; a subpackage is its __init__), None if none."""
    base = package_dir.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> set[str]:
    """`name` and the subpackages above it: importing a.b runs a's __init__ first."""
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def _imported(tree: ast.AST, current: str | None, is_package: bool, package_dir: Path) -> set[str]:
    """Package modules (dotted names inside the package) named by the import statements of one module
    (`current`: its dotted name, None for a script outside the package)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[2] for alias in node.names if alias.name.startswith(PACKAGE + ".")}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level and current is not None:
            parts = current.split(".") if is_package else current.split(".")[:-1]
            base = parts[:len(parts) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
            module = node.module.partition(".")[2]
        else:
            continue
        if module:
            found.add(module)
        # from a import b: b is a module of its own, or a name defined in a
        found |= {f"{module}.{alias.name}".lstrip(".") for alias in node.names
                  if _path(f"{module}.{alias.name}".lstrip("."), package_dir)}
    return set().union(*map(_with_parents, found)) if found else set()


def script_modules(script: str | Path, package_dir: str | Path) -> list[str]:
    """The package modules `script` imports, directly or through other package modules, plus __init__;
    dotted names inside the package (a subpackage stands for its __init__)."""
    package_dir = Path(package_dir)
    return _reachable(_imported(ast.parse(Path(script).read_text(encoding="utf-8")), None, False, package_dir),
                      package_dir)


def _reachable(pending: set[str], package_dir: Path) -> list[str]:
    """`pending` and the package modules they import, directly or not, plus __init__."""
    modules = {"__init__"}
    while pending:
        name = pending.pop()
        path = _path(name, package_dir)
        if name in modules or path is None:
            continue
        modules.add(name)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        pending |= _imported(tree, name, path.name == "__init__.py", package_dir)
    return sorted(modules)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(script: str | Path, package_dir: str | Path) -> str:
    """A digest of the code of every package module `script` runs (comments and docstrings excluded)."""
    return _digest(script_modules(script, Path(package_dir)), Path(package_dir))


def module_digest(module: str, package_dir: str | Path) -> str:
    """code_digest of a package module (dotted, inside the package) and every module it runs."""
    return _digest(_reachable(_with_parents(module), Path(package_dir)), Path(package_dir))


def _digest(modules: list[str], package_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in modules:
        path = package_dir / "__init__.py" if name == "__init__" else _path(name, package_dir)
        tree = _without_docstrings(ast.parse(path.read_text(encoding="utf-8")))
        digest.update(f"{name}\0{ast.dump(tree)}\0".encode())
    return digest.hexdigest()[:16]

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


def _imported(tree: ast.AST, current: str | None) -> set[str]:
    """Package modules named by the import statements of one module (`current`: its name inside the
    package, None for a script outside it)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith(PACKAGE + ".")}
        elif isinstance(node, ast.ImportFrom):
            inside = node.level > 0 and current is not None
            if node.module == PACKAGE or (inside and node.module is None):
                found |= {alias.name for alias in node.names}  # from flannel import x / from . import x
            elif node.module and node.module.startswith(PACKAGE + "."):
                found.add(node.module.split(".")[1])
            elif inside:
                found.add(node.module.split(".")[0])
    return found


def script_modules(script: str | Path, package_dir: str | Path) -> list[str]:
    """The package modules `script` imports, directly or through other package modules, plus __init__."""
    package_dir = Path(package_dir)
    pending = _imported(ast.parse(Path(script).read_text(encoding="utf-8")), None)
    modules = {"__init__"}
    while pending:
        name = pending.pop()
        path = package_dir / f"{name}.py"
        if name in modules or not path.is_file():
            continue  # a name imported from __init__ that is not a module of its own
        modules.add(name)
        pending |= _imported(ast.parse(path.read_text(encoding="utf-8")), name)
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
    digest = hashlib.sha256()
    for name in script_modules(script, package_dir):
        tree = _without_docstrings(ast.parse((Path(package_dir) / f"{name}.py").read_text(encoding="utf-8")))
        digest.update(f"{name}\0{ast.dump(tree)}\0".encode())
    return digest.hexdigest()[:16]

"""The code digests that rerun a rule when the package code its script runs changes: the modules are derived
from the imports (known answers on a hand-built package), and for every workflow script the derived set holds
every package module the script really loads."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from helpers import ROOT, python_env

from flannel.codedigest import code_digest, module_digest, script_modules

SCRIPTS = sorted((ROOT / "workflow" / "scripts").glob("*.py"))
PACKAGE = ROOT / "src" / "flannel"


@pytest.fixture
def fake_package(tmp_path):
    """a imports b at the top and c inside a function; c imports e from the subpackage s, which imports f
    relatively from above; d is imported by nobody."""
    package = tmp_path / "flannel"
    package.mkdir()
    (package / "__init__.py").write_text('__version__ = "0"\n')
    (package / "a.py").write_text("from .b import thing\n\n\ndef later():\n    from . import c\n")
    (package / "b.py").write_text('"""b."""\nthing = 1  # a comment\n')
    (package / "c.py").write_text("from flannel.b import thing\nfrom flannel.s import e\n")
    (package / "s").mkdir()
    (package / "s" / "__init__.py").write_text("")
    (package / "s" / "e.py").write_text("from ..f import other\n")
    (package / "f.py").write_text("other = 2\n")
    (package / "d.py").write_text("x = 1\n")
    script = tmp_path / "script.py"
    script.write_text("import json\nfrom flannel import a\n")
    return package, script


def test_modules_are_followed_through_the_package(fake_package):
    package, script = fake_package
    assert script_modules(script, package) == ["__init__", "a", "b", "c", "f", "s", "s.e"]


def test_a_dotted_import_runs_every_package_init_on_its_way(tmp_path):
    package = tmp_path / "flannel"
    (package / "s" / "t").mkdir(parents=True)
    for init in (package, package / "s", package / "s" / "t"):
        (init / "__init__.py").write_text("")
    (package / "s" / "t" / "u.py").write_text("x = 1\n")
    (tmp_path / "script.py").write_text("import flannel.s.t.u\n")
    assert script_modules(tmp_path / "script.py", package) == ["__init__", "s", "s.t", "s.t.u"]


def test_the_digest_ignores_comments_and_docstrings_but_not_code(fake_package):
    package, script = fake_package
    before = code_digest(script, package)
    (package / "b.py").write_text('"""Reworded."""\n# new comment\nthing = 1\n')
    (package / "d.py").write_text("x = 2\n")  # not imported: no effect
    assert code_digest(script, package) == before
    (package / "f.py").write_text("other = 3\n")
    assert code_digest(script, package) != before


def test_a_module_digest_covers_the_modules_it_runs_from_inside_the_package(fake_package):
    """A checkpoint's code version: relative imports count, as do the modules the module's own package runs."""
    package, _ = fake_package
    before = module_digest("s.e", package)
    (package / "a.py").write_text("x = 3\n")  # s.e does not reach a
    (package / "s" / "e.py").write_text('"""Now documented."""\nfrom ..f import other\n')
    assert module_digest("s.e", package) == before
    (package / "f.py").write_text("other = 3\n")  # reached through `from ..f import other`
    assert module_digest("s.e", package) != before
    before = module_digest("s.e", package)
    (package / "s" / "__init__.py").write_text("y = 1\n")
    assert module_digest("s.e", package) != before


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_derived_modules_cover_what_the_script_loads(script):
    """Run the script's import statements (not the script: it needs a Snakemake job) and list the package
    modules that got loaded; each must be in the digest."""
    imports = [ast.get_source_segment(script.read_text(), node) for node in ast.walk(ast.parse(script.read_text()))
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    code = "\n".join(imports) + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('flannel'))))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                                       env=python_env()).stdout)
    loaded = {name.partition(".")[2] or "__init__" for name in loaded}
    assert loaded <= set(script_modules(script, PACKAGE)), script.name


def test_every_rule_digests_the_script_it_runs():
    rules = "\n".join(path.read_text() for path in sorted((ROOT / "rules").glob("*.smk")))
    for block in re.split(r"^rule ", rules, flags=re.MULTILINE)[1:]:
        name = block.split(":", 1)[0]
        if "script:" not in block:
            continue
        script = re.search(r'script:\s*"\.\./workflow/scripts/([\w.]+)"', block).group(1)
        assert f'code=code_digest("{script}")' in block, name

"""One set of dependency pins: pyproject.toml (pip installs) and envs/flannel.yaml (the jobs' conda env) agree,
and the env installs the package itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import yaml

from helpers import ROOT

# The pins that decide a run file's bytes: both files must pin them, exactly.
BYTE_DECIDING = ("torch", "transformers", "tokenizers", "safetensors")
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)\s*(.*)$")


def requirements(lines) -> dict[str, str]:
    """Package name (normalised) -> its version specifier ("" when open)."""
    found = {}
    for line in lines:
        name, spec = REQUIREMENT.match(line.strip()).groups()
        found[re.sub(r"[-_.]+", "-", name).lower()] = spec.replace(" ", "")
    return found


def pyproject_requirements() -> dict[str, str]:
    return requirements(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def env_pip_lines() -> list[str]:
    env = yaml.safe_load((ROOT / "envs" / "flannel.yaml").read_text())
    return next(entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict))


def test_pyproject_and_the_conda_env_pin_the_same_versions():
    pyproject = pyproject_requirements()
    env = requirements(line for line in env_pip_lines() if not line.startswith("-"))
    for name in BYTE_DECIDING:
        assert pyproject.get(name, "").startswith("==") and env.get(name) == pyproject[name], name
    disagree = {name: (pyproject[name], env[name]) for name in pyproject.keys() & env.keys() if pyproject[name] != env[name]}
    assert disagree == {}


def test_the_requirements_parser_sees_a_disagreement():
    assert requirements(["torch==2.13.0"]) != requirements(["torch == 2.12.0"])
    assert requirements(["Tokenizers==1"]) == requirements(["tokenizers == 1"])


def test_the_conda_env_installs_the_package_from_the_repository(tmp_path):
    # pip reads the env's pip list as a requirements file, from the folder of the env file's copy (elsewhere).
    editable = [line for line in env_pip_lines() if line.startswith("-e")]
    assert len(editable) == 1
    (tmp_path / "requirements.txt").write_text(editable[0] + "\n")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
                             "--disable-pip-version-check", "-r", "requirements.txt"], cwd=tmp_path,
                            env={**os.environ, "FLANNEL_ROOT": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Would install flannel-" in result.stdout

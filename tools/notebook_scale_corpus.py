"""A real-text corpus at the notebooks' scale, built offline, and the config that runs the whole DAG on it (the
README's "At the notebooks' scale" measurement).

The model corpus is Python's own help topics (`pydoc_data.topics`, about 0.45 MB of English prose and code);
the tokenizer corpus is that text plus the docstrings of the standard library's modules, read from their
source files (nothing is imported), so the 10,000-token BPE holds tokens the model never sees: dead tokens, as
in the notebooks. Both files depend only on the Python version. The config is config/flannel.yaml's model
and training on the fast path, one tied and one untied run of seed 42, recording every quantity (the default).

    python tools/notebook_scale_corpus.py data/notebook_scale
    snakemake --cores 2 --configfile data/notebook_scale/config.yaml
"""

from __future__ import annotations

import argparse
import ast
import sys
import sysconfig
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"site-packages", "test", "tests", "idle_test", "lib2to3"}  # third-party code and test suites


def model_corpus() -> str:
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    return "\n\n".join(topics[name] for name in sorted(topics))


def docstrings(source: str) -> list[str]:
    """The docstrings of a module, its classes and its functions, in the order they appear."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    nodes = [tree] + [node for node in ast.walk(tree)
                      if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return [doc for node in nodes if (doc := ast.get_docstring(node))]


def library_docstrings() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(stdlib.rglob("*.py")):
        if not SKIPPED & set(path.relative_to(stdlib).parts):
            found += docstrings(path.read_text(encoding="utf-8", errors="replace"))
    return found


def config(folder: Path) -> dict:
    base = yaml.safe_load((ROOT / "config" / "flannel.yaml").read_text())
    return {"data": {"corpus": str(folder / "model.txt"), "tokenizer_corpus": str(folder / "tokenizer.txt")},
            "model": base["model"], "runs": {"tied": [42], "untied": [42], "reference_seed": 42},
            "training": {**base["training"], "compute_dtype": "float32"}, "recording": base["recording"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where model.txt, tokenizer.txt and config.yaml are written")
    folder = parser.parse_args(argv).folder
    folder.mkdir(parents=True, exist_ok=True)
    model = model_corpus()
    (folder / "model.txt").write_text(model, encoding="utf-8")
    (folder / "tokenizer.txt").write_text("\n\n".join([model, *library_docstrings()]), encoding="utf-8")
    (folder / "config.yaml").write_text(yaml.safe_dump(config(folder), sort_keys=False))
    sizes = ", ".join(f"{name} {(folder / name).stat().st_size / 1e6:.2f} MB" for name in ("model.txt", "tokenizer.txt"))
    print(f"{folder}: {sizes}, config.yaml (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()

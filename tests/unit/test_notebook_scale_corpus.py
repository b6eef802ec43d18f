"""tools/notebook_scale_corpus.py: the offline real-text corpus of the README's notebook-scale measurement."""

from __future__ import annotations

import importlib.util

import yaml
from helpers import ROOT

from flannel import config as flannel_config

spec = importlib.util.spec_from_file_location("notebook_scale_corpus", ROOT / "tools" / "notebook_scale_corpus.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_docstrings_of_the_module_its_classes_and_functions_in_order():
    source = '"""Module."""\nclass A:\n    """Class."""\n    def f(self):\n        """Method."""\n\ndef g():\n    pass\n'
    assert tool.docstrings(source) == ["Module.", "Class.", "Method."]
    assert tool.docstrings("def broken(:\n") == []


def test_the_written_corpus_and_config(tmp_path):
    tool.main([str(tmp_path)])
    model = (tmp_path / "model.txt").read_text(encoding="utf-8")
    tokenizer = (tmp_path / "tokenizer.txt").read_text(encoding="utf-8")
    assert tokenizer.startswith(model) and len(tokenizer) > 2 * len(model) > 800_000
    config = flannel_config.validate(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert config["data"]["tokenizer_corpus"] == str(tmp_path / "tokenizer.txt")
    assert config["training"]["compute_dtype"] == "float32" and config["model"]["vocab_size"] == 10000
    assert config["runs"]["tied"] == config["runs"]["untied"] == [42]

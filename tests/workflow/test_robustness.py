"""Hostile input and surprises, third wave: a deterministic failure is not retried, corpora that would train
on nonsense say so, the README's commands for code changes and list-taking flags, and the Adam replay's
known answer at the element where it once failed."""

from __future__ import annotations

import io
import logging
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from helpers import ROOT, python_env, snakemake

from flannel.data import tokens
from flannel.report import tables
from flannel.errors import DataError


@pytest.fixture
def finished_copy(workflow_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return copy


@pytest.mark.slow
def test_a_deterministic_failure_is_reported_once_not_retried(finished_copy):
    """A garbage mask file fails the same way every time: one error line, not three (no retries outside SLURM)."""
    (finished_copy / "results" / "data" / "live_dead_tokens.safetensors").write_bytes(b"not a safetensors file")
    result = snakemake(finished_copy, "--cores", "1", "results/main/runs/tied/seed42.safetensors", "--forcerun", "train",
                       "--configfile", "config/test.yaml", check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "unreadable mask file" in line]
    assert len(errors) == 1, errors
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert profile["retries"] == 2  # where nodes fail, a rerun (same bytes) is worth it


def test_a_byte_order_mark_is_dropped_and_logged(tmp_path, caplog):
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes("\ufeffthe cat sat".encode("utf-8"))
    with caplog.at_level(logging.WARNING, logger="flannel.data.tokens"):
        assert tokens.read_corpus(corpus) == "the cat sat"
    assert "bom.txt: removed the UTF-8 byte-order mark at its start" in caplog.text


def test_a_bom_no_longer_makes_unk_live(tmp_path):
    """The tokenizer corpus has no BOM, so the model corpus's BOM would encode as [UNK]."""
    text = "the cat sat on the mat. " * 200
    (tmp_path / "tokenizer.txt").write_text(text, encoding="utf-8")
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes(("\ufeff" + text).encode("utf-8"))
    tokenizer = tokens.train_tokenizer(tmp_path / "tokenizer.txt", 20)
    ids = tokens.tokenize(corpus, tokenizer, 20)
    assert tokenizer.token_to_id("[UNK]") not in set(ids.tolist())


def test_a_corpus_mostly_unk_warns_in_the_stats_and_the_report_table(tmp_path):
    corpus = tmp_path / "emoji.txt"
    corpus.write_text("🙂 " * 50, encoding="utf-8")
    ids = np.array([0] * 71 + [1] * 29)  # 71 % [UNK] (id 0), as the emoji-only corpus gave
    stats = tokens.token_stats(corpus, ids, batch_size=2, seq_len=4, steps=1, unk_id=0, max_unk_share=0.01)
    assert stats["unk_warning"] == (f"{corpus}: 71.0% of its tokens are [UNK], above data.max_unk_share = 0.01: the "
                                    "tokenizer cannot encode much of this text (another tokenizer or tokenizer corpus?)")
    assert tokens.token_stats(corpus, ids, 2, 4, 1, unk_id=0, max_unk_share=0.8)["unk_warning"] == ""
    tokens.save_stats(stats, tmp_path / "stats.json")
    tables.write_token_stats(tmp_path / "stats.json", tmp_path / "stats.html")
    page = (tmp_path / "stats.html").read_text(encoding="utf-8")
    assert '<p class="warning"><strong>Warning:</strong>' in page and "71.0% of its tokens are [UNK]" in page


def test_a_directory_as_the_corpus_or_tokenizer_is_named_a_directory(tmp_path):
    corpus = tmp_path / "corpus_dir"
    corpus.mkdir()
    with pytest.raises(DataError, match=r"corpus_dir: the corpus is a directory, not a file$"):
        tokens.read_corpus(corpus)
    with pytest.raises(DataError, match=r": the tokenizer is a directory, not a file$"):
        tokens.load_tokenizer(tmp_path, 10)


@pytest.mark.slow
def test_the_summary_names_what_a_package_edit_reruns(finished_copy):
    """Package code reaches the rules as a digest param: after an edit to the figure code, `snakemake --summary`
    marks the figures (and nothing upstream) `params changed`, as the README says; --list-changes code
    (scripts only) names nothing."""
    plots = finished_copy / "src" / "flannel" / "report" / "panels.py"
    plots.write_text(plots.read_text(encoding="utf-8") + "\nEDITED = True\n", encoding="utf-8")
    summary = snakemake(finished_copy, "--summary", "--configfile", "config/test.yaml").stdout.splitlines()
    changed = {line.split("\t")[0] for line in summary if "\tparams changed\t" in line}
    assert "results/main/figures/a_dead_cloud.png" in changed
    assert not any("/runs/" in path or "/analysis/" in path or "results/data/" in path for path in changed), changed
    code = snakemake(finished_copy, "--list-changes", "code", "--configfile", "config/test.yaml").stdout
    assert not [line for line in code.splitlines() if line.startswith("results/")]
    assert 'snakemake --summary | grep "params changed"' in (ROOT / "README.md").read_text(encoding="utf-8")


LIST_FLAGS = ("--configfile", "--config", "--forcerun", "--until", "--omit-from", "--allowed-rules", "--envvars",
              "--set-resources", "--set-threads", "--groups")


def test_the_readme_puts_targets_before_list_taking_flags_and_says_why():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [shlex.split(line.split("  #")[0]) for block in re.findall(r"```bash\n(.*?)```", readme, re.S)
                for line in block.splitlines() if line.startswith("snakemake ")]
    for words in commands:
        in_list = False
        for word in words[1:]:
            if word == "--":
                in_list = False
            elif word.startswith("-"):
                in_list = word in LIST_FLAGS
            elif in_list:
                assert not word.startswith(("results/", "logs/")), f"a target after a list-taking flag: {' '.join(words)}"
    first_target = readme.index("results/main/runs/untied/seed42.safetensors")
    warning = readme[:first_target]
    assert all(f"`{flag}`" in warning for flag in LIST_FLAGS), [f for f in LIST_FLAGS if f"`{flag}`" not in warning]


# Sanity check 9's one failure at the demo scale (config/sweeps.yaml, float32_moments, tied seed 42): the element
# of W at (449, 0), step 80, and at (1071, 62), step 449, as recorded by training (float32 m and v, bf16 W).
REPLAY_CASES = [  # step, lr, W_(t-1), m_t, v_t, W_t
    (80, 0.000842, -0.00087738037109375, 0.0002299438783666119, 4.1636130987399156e-08, -0.00113677978515625),
    (449, 0.000104, -0.001739501953125, 0.0002977865224238485, 2.944569246210449e-07, -0.00177001953125),
]
REPLAY = """
import json, sys
import torch
from flannel.analysis.adam import replay_weights
found = []
for step, lr, w, m, v, _ in json.loads(sys.argv[1]):
    out = replay_weights(torch.tensor([w], dtype=torch.bfloat16), torch.tensor([m]), torch.tensor([v]), lr=lr, step=step,
                         beta1=0.9, beta2=0.999, eps=1e-8)
    found.append(out.item())
print(json.dumps(found))
"""


@pytest.mark.parametrize("mkl_branch", ["AVX2", "AVX512", "COMPATIBLE"])
def test_the_adam_replay_rebuilds_the_recorded_weight_under_any_mkl_branch(mkl_branch):
    """The replay's float32 sqrt was MKL's, whose rounding follows its code path: correct under AVX2, one ulp off
    under AVX-512 or COMPATIBLE for these v, and the accounting job (unpinned) ran another path than training.
    Either way the bf16 weight then rounded across a tie. Both sides now take the IEEE square root."""
    import json

    env = {**python_env(), "MKL_CBWR": mkl_branch}
    result = subprocess.run([sys.executable, "-c", REPLAY, json.dumps(REPLAY_CASES)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [case[-1] for case in REPLAY_CASES]


def test_every_caption_parses_without_a_docutils_message():
    """Snakemake renders each caption with docutils and shows its errors as a box in the report (figure k's
    `|dw|` was read as a substitution); the end-to-end report test checks the built report as well."""
    from docutils.core import publish_parts

    for caption in sorted((ROOT / "workflow" / "report").glob("*.rst")):
        messages = io.StringIO()
        publish_parts(caption.read_text(encoding="utf-8"), writer_name="html",
                      settings_overrides={"warning_stream": messages, "report_level": 2})
        assert not messages.getvalue(), f"{caption.name}: {messages.getvalue()}"

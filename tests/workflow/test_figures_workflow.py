"""End to end on config/test.yaml (the shared `workflow_run`): every figure and the HTML report are built, and
a change to figure code or to a figure parameter redraws figures without retraining."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, dry_run_jobs, snakemake

from flannel.errors import AnalysisError
from flannel.outputs import read_table
from flannel.report import figures, plots

FIGURE_NAMES = sorted(figures.FIGURES)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_figure_has_a_caption():
    for name in FIGURE_NAMES:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").is_file(), name


def png_chunks(data: bytes) -> list[bytes]:
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        chunks.append(data[offset + 4:offset + 8])
        offset += 12 + length
    return chunks


@pytest.mark.slow
def test_workflow_builds_every_figure_without_timestamps(workflow_run):
    for name in FIGURE_NAMES:
        data = (workflow_run / "results" / "main" / "figures" / f"{name}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        chunks = png_chunks(data)
        assert b"tIME" not in chunks and b"tEXt" not in chunks, name
        assert len(data) > 5000, f"{name} looks empty"


@pytest.mark.slow
def test_workflow_tables_cover_every_recorded_step(workflow_run):
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    steps = list(range(config["training"]["steps"] + 1))
    for tying in ("tied", "untied"):
        for seed in config["runs"][tying]:
            table = read_table(workflow_run / "results" / "main" / "analysis" / tying / f"seed{seed}.tsv")
            assert table["step"].tolist() == steps
            assert not table.filter(like="radius_centroid_mean").isna().any().any()
    text = (workflow_run / "results" / "main" / "analysis" / "tied" / "seed42.tsv").read_text()
    assert str(workflow_run) not in text and str(ROOT) not in text


DOCUTILS_MESSAGE = r"(?:\(|System Message: )(?:ERROR|WARNING|SEVERE)/\d"


@pytest.mark.slow
def test_report_has_every_figure_and_the_sanity_report(workflow_run, tmp_path):
    built = snakemake(workflow_run, "--report", str(tmp_path / "report.html"), "--configfile", "config/test.yaml")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    # docutils reports a caption it cannot parse inside the page (an error box) and on stderr, never as a failure
    for text in (html, built.stdout, built.stderr):
        assert not re.findall(DOCUTILS_MESSAGE, text), re.findall(f".{{80}}{DOCUTILS_MESSAGE}.{{80}}", text)
    for name in FIGURE_NAMES:
        assert f"{name}.png" in html, name
    assert "report.md" in html
    assert html.count("seed42.html") >= 4  # the reference runs' film pages and token explorers, tied and untied
    for category in ("Dead-cloud geometry", "Freeze and optimisation", "Tied vs untied",
                     "Under-trained-token indicators", "Sanity checks", "Films", "Token explorer"):
        assert category in html, category
    assert "Land &amp; Bartolo" in html  # a caption, rendered


@pytest.fixture
def finished_copy(workflow_run, tmp_path):
    """A copy of the finished workflow (outputs, mtimes and Snakemake's metadata), to edit freely."""
    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True)
    return copy


def assert_only_figures(jobs: dict[str, int], *, tables: bool) -> None:
    assert jobs.get("figures") == 1, jobs
    assert not {"train", "replica", "sanity_check"} & set(jobs), jobs
    assert ("analyse_run" in jobs) == tables, jobs


@pytest.mark.slow
def test_finished_workflow_has_nothing_to_do(finished_copy):
    assert dry_run_jobs(finished_copy, "--configfile", "config/test.yaml") == {}


def reversed_keys(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


@pytest.mark.slow
def test_reordered_config_keys_rerun_nothing(finished_copy):
    # Snakemake compares params by their text; the rules pass config sections as canonical JSON.
    config = yaml.safe_load((finished_copy / "config" / "test.yaml").read_text())
    (finished_copy / "config" / "reordered.yaml").write_text(yaml.safe_dump(reversed_keys(config), sort_keys=False))
    assert dry_run_jobs(finished_copy, "--configfile", "config/reordered.yaml") == {}


def edit_module(workdir: Path, name: str, addition: str) -> None:
    module = workdir / "src" / "flannel" / f"{name}.py"
    module.write_text(module.read_text() + addition)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["report/panels", "report/figures"])
def test_figure_code_change_redraws_figures_only(finished_copy, name):
    edit_module(finished_copy, name, "\nEDITED = 1\n")
    assert_only_figures(dry_run_jobs(finished_copy, "--configfile", "config/test.yaml"), tables=False)


@pytest.mark.slow
def test_analysis_code_change_recomputes_tables_not_runs(finished_copy):
    edit_module(finished_copy, "analysis/per_step", "\nEDITED = 1\n")
    assert_only_figures(dry_run_jobs(finished_copy, "--configfile", "config/test.yaml"), tables=True)


@pytest.mark.slow
def test_comment_and_docstring_edits_rerun_nothing(finished_copy):
    for name in ("training/loop", "data/tokens", "analysis/per_step", "report/panels", "sanity/render"):
        module = finished_copy / "src" / "flannel" / f"{name}.py"
        text = module.read_text()
        assert text.startswith('"""')
        module.write_text('"""Reworded. ' + text[3:] + "\n# a comment\n")
    assert dry_run_jobs(finished_copy, "--configfile", "config/test.yaml") == {}


@pytest.mark.slow
def test_rewording_the_sanity_report_reruns_the_check_only(finished_copy):
    module = finished_copy / "src" / "flannel" / "sanity" / "render.py"
    module.write_text(module.read_text().replace("# Sanity checks: Flannel 1 vs Flannel 3", "# Sanity: Flannel 1 vs 3"))
    # The verdict reads the report, so it follows; no replica retrains, no table or figure is redone.
    assert dry_run_jobs(finished_copy, "--configfile", "config/test.yaml") == {"sanity_check": 1, "sanity_verdict": 1, "all": 1}


@pytest.mark.slow
def test_figure_parameter_change_redraws_figures_only(finished_copy):
    config = yaml.safe_load((finished_copy / "config" / "test.yaml").read_text())
    config["figures"]["dpi"] += 1
    (finished_copy / "config" / "dpi.yaml").write_text(yaml.safe_dump(config))
    assert_only_figures(dry_run_jobs(finished_copy, "--configfile", "config/dpi.yaml"), tables=False)


@pytest.mark.slow
def test_same_tables_give_the_same_png_bytes(workflow_run, tmp_path):
    tables = workflow_run / "results" / "main" / "analysis"
    inputs = {"tied": [str(tables / "tied" / "seed42.tsv"), str(tables / "tied" / "seed43.tsv")],
              "untied": [str(tables / "untied" / "seed42.tsv")]}
    settings = {"seeds": {"tied": [42, 43], "untied": [42], "paired": [42], "reference": 42},
                "quantities": ["embeddings"], "figures": {"pca_steps": [0], "dpi": 50}}
    figures.draw("a_dead_cloud", inputs, settings, tmp_path / "one.png")
    figures.draw("a_dead_cloud", inputs, settings, tmp_path / "two.png")
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def test_every_registered_figure_has_a_drawing_function_of_its_name():
    assert sorted(plots.DRAW) == FIGURE_NAMES


def test_unknown_figure_is_refused_naming_the_output(tmp_path):
    with pytest.raises(AnalysisError, match=r"z\.png: unknown figure 'z_nothing'"):
        figures.draw("z_nothing", {}, {"figures": {"dpi": 50}}, tmp_path / "z.png")


def zero_dead_config(workdir: Path) -> str:
    """config/test.yaml on a corpus in which every token occurs: a character-level vocabulary (no merges to
    leave unused) trained on the demo model corpus, and that corpus plus a character the tokenizer never saw,
    so [UNK] occurs too. (A tokenizer trained on the model corpus itself still leaves dead tokens: [UNK] and
    capitals only ever merged into longer tokens.)"""
    from flannel.data.corpus import demo_corpora

    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    text, _ = demo_corpora(0, config["data"]["demo_words"], 0)
    (workdir / "tokenizer_corpus.txt").write_text(text, encoding="utf-8")
    (workdir / "corpus.txt").write_text(text + " \u00a7\n", encoding="utf-8")
    config["data"].update(corpus="corpus.txt", tokenizer_corpus="tokenizer_corpus.txt")
    config["model"]["vocab_size"] = 50
    (workdir / "config" / "zero_dead.yaml").write_text(yaml.safe_dump(config))
    return "config/zero_dead.yaml"


@pytest.mark.slow
def test_no_dead_token_draws_what_it_can_and_says_what_it_skipped(tmp_path):
    from helpers import copy_repo

    from flannel.data.tokens import load_masks

    workdir = copy_repo(tmp_path / "repo")
    snakemake(workdir, "--cores", "2", "--configfile", zero_dead_config(workdir))
    assert int(load_masks(workdir / "results" / "data" / "live_dead_tokens.safetensors")["dead_mask"].sum()) == 0
    for name in FIGURE_NAMES:
        assert (workdir / "results" / "main" / "figures" / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE), name
    log = (workdir / "logs" / "main" / "figures" / "figures.log").read_text()
    assert "not drawn: tied W: no values (W_dead_centroid_norm)" in log
    assert "not drawn: dead rows: none (n=0) (tied W displacements)" in log
    assert "not drawn: live rows" not in log  # the live rows are all drawn
    first_step = (workdir / "results" / "main" / "report" / "first_step.html").read_text()
    assert "No dead token: every token of the vocabulary occurs in the training corpus" in first_step
    table = read_table(workdir / "results" / "main" / "analysis" / "untied" / "seed42.tsv")
    assert table.filter(like="_dead_").isna().all().all() and not table.filter(like="_live_").iloc[1:].isna().any().any()

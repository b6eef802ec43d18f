"""Figures m-o (epochs, tied-vs-untied and sweep distances) drawn from hand-built recordings through the same
functions the rules call: with dead rows, with none, and with no untied run (an empty panel says why)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import write_recording

from flannel.analysis import distances, epochs, lattice
from flannel.outputs import write_table
from flannel.report import figures

T, ROWS, D = 8, 6, 4


def walk(seed: int, frozen_after: int) -> torch.Tensor:
    """Rows taking random steps that shrink to nothing after `frozen_after` records: [T, ROWS, D] bf16."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(ROWS, D, generator=g) * 0.02
    records = [x.clone()]
    for t in range(1, T):
        x = x + (torch.randn(ROWS, D, generator=g) * 0.01 if t <= frozen_after else 0)
        records.append(x.clone())
    return torch.stack(records).to(torch.bfloat16)


def build(tmp_path, *, tied_seeds=(1, 2), untied_seeds=(1,), dead=(0, 1, 2)) -> dict:
    """Every table the figures read, as the rules would write them; returns the figure rule's inputs."""
    inputs = {key: [] for key in ("epochs_tied", "epochs_untied", "epochs_table", "distances", "distance_rows",
                                  "distance_lattice", "sweep_distance")}
    runs, paths, row_paths = [], {}, []
    for tying, seeds in (("tied", tied_seeds), ("untied", untied_seeds)):
        for seed in seeds:
            w = walk(seed, frozen_after=3 + seed)
            matrices = {"embeddings": w} if tying == "tied" else {"embeddings_E": w, "embeddings_W": walk(seed + 10, 5)}
            path = paths[tying, seed] = write_recording(
                tmp_path / f"{tying}{seed}.safetensors", matrices, tied=tying == "tied", dead_indices=list(dead),
                vocab_size=ROWS, losses=(math.nan,) * T, steps=tuple(range(T)))
            _, rows = lattice.lattice_tables(path)
            write_table(rows, row_paths_entry := tmp_path / f"{tying}{seed}.rows.tsv")
            series = epochs.series_table(epochs.dead_cloud_series(path), rows, window=3)
            write_table(series, tmp_path / f"{tying}{seed}.epochs.tsv")
            inputs[f"epochs_{tying}"].append(str(tmp_path / f"{tying}{seed}.epochs.tsv"))
            runs.append((tying, seed))
            row_paths.append(row_paths_entry)
    table = epochs.epoch_table(runs, inputs["epochs_tied"] + inputs["epochs_untied"], row_paths, 0.9, 3)
    write_table(table, tmp_path / "epochs.tsv")
    inputs["epochs_table"] = [str(tmp_path / "epochs.tsv")]
    for seed in sorted(set(tied_seeds) & set(untied_seeds)):
        steps, rows = distances.tied_untied(paths["tied", seed], paths["untied", seed])
        write_table(steps, tmp_path / f"distance{seed}.tsv")
        distances.write_rows(rows, tmp_path / f"distance{seed}.rows.safetensors")
        inputs["distances"].append(str(tmp_path / f"distance{seed}.tsv"))
        if not inputs["distance_rows"]:
            inputs["distance_rows"] = [str(tmp_path / f"distance{seed}.rows.safetensors")]
            inputs["distance_lattice"] = [str(tmp_path / f"tied{seed}.rows.tsv")]
    if len(tied_seeds) >= 2:
        write_table(distances.sweep({s: paths["tied", s] for s in tied_seeds}), tmp_path / "sweep.tsv")
        inputs["sweep_distance"] = [str(tmp_path / "sweep.tsv")]
    return inputs


def settings(tied=(1, 2), untied=(1,)):
    paired = [s for s in tied if s in untied]
    return {"seeds": {"tied": list(tied), "untied": list(untied), "paired": paired, "reference": tied[0]},
            "quantities": ["embeddings"], "figures": {"dpi": 40, "pca_steps": [0]}}


@pytest.mark.parametrize("dead", [(0, 1, 2), ()], ids=["dead rows", "no dead rows"])
def test_the_figures_draw_with_and_without_dead_rows(tmp_path, dead):
    inputs = build(tmp_path, dead=dead)
    for name in ("m_epochs", "n_tied_untied_distance", "o_sweep_distance"):
        figures.draw(name, inputs, settings(), tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 3000, name


def test_without_untied_runs_or_a_sweep_the_figures_say_so(tmp_path):
    inputs = build(tmp_path, tied_seeds=(1,), untied_seeds=())
    seeds = {"tied": [1], "untied": [], "paired": []}
    assert figures.missing("m_epochs", seeds, ["embeddings"]) is None
    assert figures.missing("n_tied_untied_distance", seeds, ["embeddings"]) is not None
    assert figures.missing("o_sweep_distance", seeds, ["embeddings"]) == "this experiment trains fewer than two tied seeds"
    for name in ("m_epochs", "n_tied_untied_distance", "o_sweep_distance"):  # drawn anyway: an empty panel, no crash
        figures.draw(name, inputs, settings(tied=(1,), untied=()), tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").is_file()

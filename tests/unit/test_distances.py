"""Run-to-run distances (flannel.analysis.distances) with known answers: two hand-built recordings whose rows sit 3-4-5
apart, and a sweep of three runs whose pairwise distances are known."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import write_recording

from flannel.analysis import distances
from flannel.errors import AnalysisError, RecordingError

BF16 = torch.bfloat16
STEPS = (0, 1, 2)


def recording(path, records, *, tied=True, dead=(0, 1)):
    """A recording of rows [T, 3, 2] (rows 0 and 1 dead); untied, E is W (only W is compared)."""
    x = torch.tensor(records, dtype=torch.float64).to(BF16)
    matrices = {"embeddings": x} if tied else {"embeddings_E": x, "embeddings_W": x}
    return write_recording(path, matrices, tied=tied, dead_indices=list(dead), vocab_size=3, losses=(math.nan, 1.0, 1.0),
                           steps=STEPS)


def test_tied_and_untied_rows_apart_by_known_distances(tmp_path):
    base = [[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]] * 3
    # Step t moves the untied run's dead row 0 by (3t, 4t) (distance 5t), dead row 1 by (0, t), live row 2 by (t, 0).
    moved = [[[3.0 * t, 4.0 * t], [1.0, 1.0 + t], [2.0 + t, 2.0]] for t in STEPS]
    tied = recording(tmp_path / "tied.safetensors", base)
    untied = recording(tmp_path / "untied.safetensors", moved, tied=False)
    table, rows = distances.tied_untied(tied, untied)
    assert table["dead_max"].tolist() == [0.0, 5.0, 10.0]
    assert table["dead_mean"].tolist() == [0.0, 3.0, 6.0]  # (5t + t) / 2
    assert table["dead_median"].tolist() == [0.0, 3.0, 6.0]  # the mean of the two middle values, not the lower one
    assert table["live_mean"].tolist() == table["live_max"].tolist() == [0.0, 1.0, 2.0]
    assert rows["distances"].tolist() == [[0.0, 5.0, 10.0], [0.0, 1.0, 2.0]]  # dead rows x steps
    assert rows["tokens"].tolist() == [0, 1] and rows["steps"].tolist() == list(STEPS)
    distances.write_rows(rows, tmp_path / "rows.safetensors")
    assert torch.equal(distances.read_rows(tmp_path / "rows.safetensors")["distances"], rows["distances"])


def test_no_dead_rows_gives_nan_statistics_and_an_empty_row_matrix(tmp_path):
    base = [[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]] * 3
    tied = recording(tmp_path / "tied.safetensors", base, dead=())
    untied = recording(tmp_path / "untied.safetensors", base, tied=False, dead=())
    table, rows = distances.tied_untied(tied, untied)
    assert table["dead_mean"].isna().all() and (table["live_max"] == 0).all()
    assert tuple(rows["distances"].shape) == (0, 3)


def test_runs_that_cannot_be_compared_are_refused_naming_the_file(tmp_path):
    base = [[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]] * 3
    tied = recording(tmp_path / "tied.safetensors", base)
    with pytest.raises(RecordingError, match="a tied recording where an untied one is expected"):
        distances.tied_untied(tied, tied)
    other = recording(tmp_path / "other.safetensors", base, tied=False, dead=(0,))
    with pytest.raises(AnalysisError, match=r"other\.safetensors: dead_indices differ"):
        distances.tied_untied(tied, other)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(AnalysisError, match=r"junk\.safetensors: unreadable distance rows"):
        distances.read_rows(tmp_path / "junk.safetensors")


def test_the_sweep_pairwise_distances(tmp_path):
    # Three runs whose rows are shifted by 0, 3 and 4 along x (dead rows) and by 0, 0, 1 along y (live row),
    # from step 1 on: pairs (1, 2), (1, 3), (2, 3) are 3, 4, 1 apart (dead) and 0, 1, 1 (live).
    def run(seed, dx, dy):
        records = [[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]]
        records += [[[dx, 0.0], [1.0 + dx, 1.0], [2.0, 2.0 + dy]]] * 2
        return recording(tmp_path / f"seed{seed}.safetensors", records)

    paths = {3: run(3, 4.0, 1.0), 1: run(1, 0.0, 0.0), 2: run(2, 3.0, 0.0)}
    table = distances.sweep(paths)
    last = table[table["step"] == 2].set_index(["seed_a", "seed_b"])
    assert last.index.tolist() == [(1, 2), (1, 3), (2, 3)]
    assert last["dead_mean"].tolist() == [3.0, 4.0, 1.0] and last["live_mean"].tolist() == [0.0, 1.0, 1.0]
    assert (table[table["step"] == 0][["dead_mean", "live_mean"]] == 0).all().all()
    assert distances.sweep({1: paths[1]}).empty  # one run: no pairs

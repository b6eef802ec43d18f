"""The film and the sky maps (flannel.report.film, .sky, .basis) on hand-built recordings: the frames chosen, the
rows drawn, the fixed basis and its signs, the sky coordinates, the film's frames and bytes through the real
ffmpeg, and the one-line message when ffmpeg is missing."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import python_env, write_recording

from flannel.analysis import lattice
from flannel.outputs import write_table
from flannel.recording import Recording
from flannel.report import basis, figures, film, sky

T, ROWS, D = 9, 40, 4
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg: apt-get install ffmpeg (Debian's package)")


def test_frame_indices_keep_every_record_that_fits_and_otherwise_exactly_max_frames():
    assert film.frame_indices(5, 12) == [0, 1, 2, 3, 4]
    chosen = film.frame_indices(21, 12)
    assert len(chosen) == 12 and chosen == sorted(set(chosen))
    assert chosen[:5] == [0, 1, 2, 3, 4] and chosen[-1] == 20  # the early records all, the last always
    long = film.frame_indices(5001, 200)
    assert len(long) == 200 and long[:10] == list(range(10)) and long[-1] == 5000
    assert film.frame_indices(3, 2) == [0, 2]


def test_shown_rows_are_every_dead_row_and_a_fixed_live_sample():
    dead = np.arange(50) % 5 == 0
    shown = film.shown_rows(dead, 7)
    assert set(np.flatnonzero(dead)) <= set(shown.tolist()) and len(shown) == 10 + 7
    assert np.array_equal(shown, film.shown_rows(dead, 7))  # the same rows in every build
    assert np.array_equal(film.shown_rows(dead, 100), np.arange(50))


def test_signs_follow_the_dead_centroid_or_else_the_largest_component():
    directions = np.array([[1.0, 0.0], [0.0, -0.8], [0.0, 0.6]])
    assert np.array_equal(basis.signed(directions, np.array([-2.0, 1.0, 0.0])), [[-1.0, 0.0], [0.0, 0.8], [0.0, -0.6]])
    assert np.array_equal(basis.signed(-directions, np.zeros(3)), [[1.0, 0.0], [0.0, 0.8], [0.0, -0.6]])


def test_sky_coordinates_put_pc2_at_the_pole_pc1_at_longitude_0_and_pc3_at_90():
    lon, lat = sky.sky_coordinates(np.array([[2.0, 0, 0], [0, 3.0, 0], [0, 0, 0.5], [-1.0, 0, 0], [1.0, 1.0, 0],
                                             [0, 0, 0]]))
    assert np.allclose(lon[[0, 2, 3, 5]], [0, math.pi / 2, math.pi, 0])
    assert np.allclose(lat, [0, math.pi / 2, 0, 0, math.pi / 4, 0])


def recording(tmp_path, tied=True):
    """Rows spread mostly along dimension 1, then 0, then 3; dead rows offset to -x1; the dead rows stop moving
    after record 3, the live ones keep drifting."""
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.5, 2.0, 0.01, 0.1])
    x = torch.randn(ROWS, D, generator=g) * scale
    dead = list(range(0, ROWS, 2))
    x[dead, 1] -= 1.0
    records = []
    for t in range(T):
        records.append(x.clone())
        step = torch.randn(ROWS, D, generator=g) * 0.05
        step[dead] *= float(t < 3)
        x = x + step
    W = torch.stack(records).to(torch.bfloat16)
    matrices = {"embeddings": W} if tied else {"embeddings_E": W, "embeddings_W": W}
    path = write_recording(tmp_path / f"{'tied' if tied else 'untied'}.safetensors", matrices, tied=tied,
                           dead_indices=dead, vocab_size=ROWS, losses=[math.nan] + [1.0] * (T - 1), steps=range(T))
    _, rows = lattice.lattice_tables(path)
    write_table(rows, tmp_path / "rows.tsv")
    return path, tmp_path / "rows.tsv"


def test_the_fixed_basis_finds_the_spread_axes_with_the_dead_centroid_on_the_positive_side(tmp_path):
    path, _ = recording(tmp_path)
    run = Recording(path)
    dead = np.arange(ROWS) % 2 == 0
    for which in basis.BASES:
        fixed = basis.fixed_basis(run, "W", dead, 3, which)
        assert fixed.directions.shape == (D, 3) and fixed.explained[0] > fixed.explained[1] > fixed.explained[2]
        assert np.argmax(np.abs(fixed.directions), axis=0).tolist() == [1, 0, 3]
        assert fixed.directions[1, 0] < 0  # the dead rows sit at -x1: PC1 points that way
        assert (fixed.project(run.record("embeddings", T - 1))[dead].mean(axis=0) > 0).all()


SETTINGS = {"max_frames": 6, "fps": 4, "size": [320, 160], "dpi": 40, "live_sample": 10, "basis": "last_step"}


@needs_ffmpeg
@pytest.mark.parametrize("tied", [True, False])
def test_two_builds_of_the_film_give_the_same_bytes_and_the_configured_frames(tmp_path, tied):
    path, rows = recording(tmp_path, tied)
    outputs = [tmp_path / f"film{build}.mp4" for build in (1, 2)]
    assert [film.draw_film(path, rows, out, SETTINGS) for out in outputs] == [6, 6]
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                            "stream=nb_read_frames,width,height,duration,codec_name", "-of", "json", outputs[0]],
                           capture_output=True, text=True, check=True).stdout
    assert '"nb_read_frames": "6"' in probe and '"width": 320' in probe and '"height": 160' in probe
    assert '"codec_name": "h264"' in probe and '"duration": "1.500000"' in probe  # 6 frames at 4 per second


def test_without_ffmpeg_the_film_stops_with_one_line_naming_what_to_install(tmp_path):
    path, rows = recording(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    code = ("from flannel.logs import script_logging\nfrom flannel.report import film\n"
            f"with script_logging(None):\n    film.draw_film({str(path)!r}, {str(rows)!r}, {str(tmp_path / 'f.mp4')!r}, "
            f"{SETTINGS!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**python_env(), "PATH": str(empty)})
    assert result.returncode == 1 and not (tmp_path / "f.mp4").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "f.mp4: the film needs ffmpeg, which is not on PATH: install it (Debian/Ubuntu: apt-get install ffmpeg; "
        "conda: conda install -c conda-forge ffmpeg)")


def test_the_sky_panels_take_their_steps_from_the_runs_row_of_the_epochs_table():
    epochs = pd.DataFrame({"run": ["tied seed 42", "tied seed 43"], "matrix": ["tied W", "tied W"],
                           "peak_speed_centroid": [3.0, 5.0], "freeze_onset": [math.nan, 7.0]})
    steps = sky.moment_steps([0, 1, 2, 3, 8], epochs, "tied seed 42", "tied W")
    assert steps.keys() == sky.MOMENTS.keys()
    assert [steps[name] for name in ("t = 0", "peak speed of the dead centroid", "last step")] == [0, 3.0, 8]
    assert math.isnan(steps["freeze onset"])  # a panel that says the run never reaches it
    assert all(math.isnan(value) for value in list(sky.moment_steps([0, 8], epochs, "untied seed 42",
                                                                     "untied W").values())[1:3])


def test_figure_p_draws_from_a_recording_and_the_epochs_table(tmp_path):
    path, _ = recording(tmp_path)
    epochs = pd.DataFrame({"run": ["tied seed 42"], "matrix": ["tied W"], "peak_speed_centroid": [2.0],
                           "freeze_onset": [math.nan]})
    write_table(epochs, tmp_path / "epochs.tsv")
    settings = {"seeds": {"tied": [42], "untied": [], "paired": [], "reference": 42}, "quantities": ["embeddings"],
                "figures": {"dpi": 40, "basis": "last_step"}}
    out = tmp_path / "p.png"
    assert figures.draw("p_sky_map", {"tied_run": [str(path)], "epochs_table": [str(tmp_path / "epochs.tsv")]},
                        settings, out) is None
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 5000

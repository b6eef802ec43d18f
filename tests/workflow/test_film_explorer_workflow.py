"""End to end on config/test.yaml (the shared `workflow_run`): the films have the configured frames and duration,
a second build gives the same bytes and the report's film page plays them in headless Chromium; the token explorer, opened in headless Chromium (the report test's
helpers), shows for a dead token picked by its id the distances computed here from the run file itself through
the reader, with no console error."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from helpers import ROOT, snakemake
from test_report_browser import chromium, probe, probed, uncaught

from flannel.analysis.rows import dead_rows
from flannel.outputs import read_table
from flannel.recording import Recording
from flannel.report.film import frame_indices

CONFIG = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
FILM = "results/main/figures/film/{tying}/seed42.mp4"
FILM_PAGE = "results/main/report/film/{tying}/seed42.html"
EXPLORER = "results/main/report/explorer/tied/seed42.html"


def frames_and_duration(path) -> tuple[int, float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                          "stream=nb_read_frames,duration", "-of", "json", str(path)], capture_output=True, text=True,
                         check=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["nb_read_frames"]), float(stream["duration"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="no ffmpeg: apt-get install ffmpeg (Debian's package)")
def test_the_films_have_the_configured_frames_and_a_second_build_gives_the_same_bytes(workflow_run, tmp_path):
    records = CONFIG["training"]["steps"] + 1
    frames = len(frame_indices(records, CONFIG["film"]["max_frames"]))
    assert frames == CONFIG["film"]["max_frames"] < records  # the test config exercises the frame choice
    for tying in ("tied", "untied"):
        assert frames_and_duration(workflow_run / FILM.format(tying=tying)) == (frames, frames / 10)  # fps default 10
    copy = tmp_path / "copy"
    shutil.copytree(workflow_run, copy, symlinks=True)
    target = FILM.format(tying="untied")
    (copy / target).unlink()
    snakemake(copy, target, "--cores", "1", "--configfile", "config/test.yaml")
    assert (copy / target).read_bytes() == (workflow_run / target).read_bytes()


PLAY = """<script>
window.addEventListener("load", () => {
  const video = document.getElementById("film");
  const done = () => window.__report({width: video.videoWidth, height: video.videoHeight, duration: video.duration,
                                      error: video.error ? video.error.code : null});
  if (video.readyState >= 1) return done();
  video.addEventListener("loadedmetadata", done);
  video.addEventListener("error", done);
});
</script>"""


def with_script(html: str, script: str) -> str:
    """The page with the error probe in its head and `script` before its last </body>."""
    body, end, rest = probed(html, viewer=False).rpartition("</body>")
    return body + script + end + rest


@pytest.mark.slow
def test_the_report_page_of_each_film_plays_it_in_chromium(workflow_run, tmp_path):
    frames = CONFIG["film"]["max_frames"]
    for tying in ("tied", "untied"):
        page = tmp_path / f"{tying}.html"
        page.write_text(with_script((workflow_run / FILM_PAGE.format(tying=tying)).read_text(), PLAY))
        out, stderr = probe(page)
        assert out["errors"] == [] and uncaught(stderr) == []
        assert out["seen"] == {"width": CONFIG["film"]["size"][0], "height": CONFIG["film"]["size"][1],
                               "duration": pytest.approx(frames / 10), "error": None}


PICK = """<script>
window.addEventListener("load", () => {
  document.getElementById("query").value = "%d";
  document.getElementById("show").click();
  const rows = (selector) => Array.from(document.querySelectorAll(selector + " tr")).map(
    (tr) => Array.from(tr.children).map((cell) => cell.textContent.trim()));
  window.__report({heading: document.querySelector("#token h2").textContent, trajectory: rows("#trajectory"),
                   phases: rows("#phases tbody"), dead_rows: document.querySelectorAll("#dead-rows tr").length});
});
</script>"""


def picked_token(run: Recording, dead: np.ndarray) -> tuple[int, int]:
    """(row, token id): the dead row farthest from the dead centroid at the last step, a row that moved."""
    x = run.record("embeddings", run.n_records - 1).double().numpy()
    distance = np.linalg.norm(x - x[dead].mean(axis=0), axis=1)
    row = int(np.flatnonzero(dead)[distance[dead].argmax()])
    return row, int(run.tensor("recorded_rows")[row])


@pytest.mark.slow
def test_the_explorer_shows_a_dead_tokens_row_as_the_run_file_gives_it(workflow_run, tmp_path):
    run = Recording(workflow_run / "results/main/runs/tied/seed42.safetensors")
    dead = dead_rows(run).numpy()
    row, token = picked_token(run, dead)
    page = tmp_path / "explorer.html"
    page.write_text(with_script((workflow_run / EXPLORER).read_text(encoding="utf-8"), PICK % token), encoding="utf-8")
    out, stderr = probe(page)
    assert out["errors"] == [] and uncaught(stderr) == []
    seen = out["seen"]
    assert seen["heading"].startswith(f"token {token} ") and "dead" in seen["heading"]
    assert seen["dead_rows"] == int(dead.sum())
    steps = run.steps()
    shown = [int(line[0]) for line in seen["trajectory"]]
    assert shown == [steps[i] for i in frame_indices(run.n_records, CONFIG["explorer"]["max_points"])]
    for step, line in zip(shown, seen["trajectory"]):
        x = run.record("embeddings", steps.index(step)).double().numpy()
        origin, centroid = np.linalg.norm(x[row]), np.linalg.norm(x[row] - x[dead].mean(axis=0))
        assert [float(line[1]), float(line[2])] == pytest.approx([origin, centroid], rel=1e-5), step
    lattice = read_table(workflow_run / "results/main/analysis/lattice/tied/seed42.rows.tsv", ("token",))
    mine = lattice[(lattice["matrix"] == "W") & (lattice["token"] == token)].iloc[0]
    expected = ["never" if np.isnan(mine[c]) else str(int(mine[c])) for c in ("mid_from", "late_from", "frozen_from",
                                                                                 "last_move")]
    assert seen["phases"][0][:5] == ["W", *expected]
    shot = tmp_path / "explorer.png"
    chromium(f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10000

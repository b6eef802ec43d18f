"""The report's tables on hand-written inputs with known values."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pandas as pd
import pytest

from flannel.errors import AnalysisError
from flannel.report import tables


class Cells(HTMLParser):
    """The text of every <th>/<td>, row by row, and the caption."""

    def __init__(self):
        super().__init__()
        self.rows, self.caption, self._in = [], "", None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th", "caption"):
            self._in = tag
            if tag != "caption":
                self.rows[-1].append("")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "caption":
            self.caption += data
        elif self._in:
            self.rows[-1][-1] += data


def cells(path) -> Cells:
    parser = Cells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def analysis_table(path, losses, radii, moved):
    """Radii from the centroid as given; from the origin, ten times them (telling the two columns apart)."""
    pd.DataFrame({"step": range(len(losses)), "loss": losses, "W_dead_radius_centroid_mean": radii,
                  "W_dead_radius_origin_mean": [10 * r for r in radii],
                  "W_dead_fraction_moved": moved}).to_csv(path, sep="\t", index=False, na_rep="NaN")
    return str(path)


def test_run_summary_has_one_row_per_run_from_first_and_last_steps(tmp_path):
    tied = analysis_table(tmp_path / "t.tsv", [float("nan"), 7.5, 6.25], [0.159, 0.2, 0.125], [float("nan"), 1.0, 0.5])
    untied = analysis_table(tmp_path / "u.tsv", [float("nan"), 7.0], [0.16, 0.3], [float("nan"), 0.75])
    tables.write_run_summary([("tied", 42), ("untied", 42)], [tied, untied], tmp_path / "runs.html")
    parsed = cells(tmp_path / "runs.html")
    assert parsed.caption == "Runs"
    assert parsed.rows == [list(tables.RUN_COLUMNS), ["tied seed 42", "6.25", "0.159", "0.125", "1.25", "0.5"],
                           ["untied seed 42", "7", "0.16", "0.3", "3", "0.75"]]


def test_run_summary_refuses_a_table_without_its_columns_naming_the_file(tmp_path):
    pd.DataFrame({"step": [0], "loss": [1.0]}).to_csv(tmp_path / "old.tsv", sep="\t", index=False)
    with pytest.raises(AnalysisError, match=r"old\.tsv: analysis table lacks column\(s\) W_dead_radius_centroid_mean"):
        tables.write_run_summary([("tied", 1)], [str(tmp_path / "old.tsv")], tmp_path / "runs.html")
    assert not (tmp_path / "runs.html").exists()


def test_token_stats_table_lists_every_statistic_in_order_and_escapes_text(tmp_path):
    stats = {key: index for index, key in enumerate(tables.TOKEN_STATS)}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    tables.write_token_stats(tmp_path / "stats.json", tmp_path / "stats.html")
    parsed = cells(tmp_path / "stats.html")
    assert parsed.rows[0] == ["quantity", "value"]
    assert parsed.rows[1:] == [[label, str(index)] for index, label in enumerate(tables.TOKEN_STATS.values())]
    assert "&quot;epochs&quot;" in (tmp_path / "stats.html").read_text()
    assert "<script" not in (tmp_path / "stats.html").read_text()


def step_table(path, side_values: dict) -> str:
    """Steps 0 and 1 of an analysis table: lr 1e-3 at step 1; per side (disp, origin 0, origin 1, centroid 0,
    centroid 1) of the dead rows."""
    columns = {"step": [0, 1], "lr": [float("nan"), 1e-3]}
    for side, (disp, o0, o1, c0, c1) in side_values.items():
        columns.update({f"{side}_dead_displacement_step": [float("nan"), disp],
                        f"{side}_dead_radius_origin_mean": [o0, o1], f"{side}_dead_radius_centroid_mean": [c0, c1]})
    pd.DataFrame(columns).to_csv(path, sep="\t", index=False, na_rep="NaN")
    return str(path)


def test_the_first_step_against_lr_sqrt_d_and_the_answer(tmp_path):
    runs = [("tied", 42), ("tied", 43), ("untied", 42)]
    paths = [step_table(tmp_path / "t42.tsv", {"W": (0.0078, 0.16, 0.17, 0.159, 0.158)}),
             step_table(tmp_path / "t43.tsv", {"W": (0.0082, 0.16, 0.18, 0.159, 0.157)}),
             step_table(tmp_path / "u42.tsv", {"W": (0.0076, 0.16, 0.172, 0.159, 0.159),
                                               "E": (0.0, 0.16, 0.16, 0.159, 0.159)})]
    rows = tables.first_step_rows(runs, paths, n_embd=64)
    assert [row[0] for row in rows] == ["tied W (2)", "untied W (1)", "untied E (1)"]
    assert rows[0][1] == pytest.approx(0.008) and rows[0][2] == pytest.approx(0.008) and rows[0][3] == pytest.approx(1.0)
    assert rows[0][4] == pytest.approx(0.015) and rows[0][5] == pytest.approx(-0.0015)
    assert rows[2][1] == 0.0 and rows[2][4] == 0.0
    assert tables.first_step_answer(rows).startswith(
        "The dead cloud's step-1 expansion from the origin comes from W, the unembedding, whether tied or not")
    tables.write_first_step(runs, paths, 64, tmp_path / "first.html")
    parsed = cells(tmp_path / "first.html")
    assert parsed.rows[0] == list(tables.FIRST_STEP_COLUMNS) and len(parsed.rows) == 4
    shrinking = [step_table(tmp_path / "s42.tsv", {"W": (0.008, 0.16, 0.159, 0.159, 0.158),
                                                   "E": (0.0, 0.16, 0.16, 0.159, 0.159)})]
    assert tables.first_step_answer(tables.first_step_rows([("untied", 42)], shrinking, n_embd=64)) == (
        "No expansion at step 1 (change of the radius from the origin: untied W -0.001, untied E +0); the dead rows "
        "move in untied W (1 x lr sqrt(D)) and not at all in untied E.")
    only_tied = tables.first_step_rows(runs[:1], paths[:1], n_embd=64)
    assert "an untied run would tell whether W or the tying does it" in tables.first_step_answer(only_tied)

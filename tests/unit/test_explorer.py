"""The token explorer's data (flannel.report.explorer) on a hand-built recording: each row's distances from the
origin and the dead centroid at the chosen steps, the tokens' strings and counts, the lattice phases, the
messages for a token table or lattice table that lacks a recorded token; and the page keeps its data inert."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import write_recording

from flannel.errors import AnalysisError
from flannel.outputs import write_table
from flannel.report import explorer, explorer_page

# Four rows of W in D = 2 at three steps; rows 1 and 3 dead: the dead centroid is the mean of rows 1 and 3.
W = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]],
                  [[3.0, 4.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
                  [[6.0, 8.0], [2.0, 2.0], [0.0, 1.0], [0.0, 2.0]]], dtype=torch.bfloat16)
TOKENS = pd.DataFrame({"token_id": [0, 1, 2, 3], "token": ["the", "</script>", "NA", "ü"], "count": [5, 0, 7, 0],
                       "live": [1, 0, 1, 0]})
SETTINGS = {"max_points": 10, "basis": "last_step"}


def inputs(tmp_path, tokens=TOKENS, lattice_tokens=(0, 1, 2, 3)):
    run = write_recording(tmp_path / "run.safetensors", {"embeddings": W}, tied=True, dead_indices=[1, 3],
                          vocab_size=4)
    rows = pd.DataFrame({"matrix": "W", "token": list(lattice_tokens), "dead": False, "mid_from": 1.0,
                         "late_from": 2.0, "frozen_from": [2.0, float("nan"), 1.0, 2.0][: len(lattice_tokens)],
                         "last_move": 1})
    write_table(rows, tmp_path / "rows.tsv")
    tokens.to_csv(tmp_path / "tokens.csv", index=False)
    return run, tmp_path / "rows.tsv", tmp_path / "tokens.csv"


def decoded(text: str) -> list[float]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").tolist()


def test_the_data_holds_each_rows_distances_strings_and_phases(tmp_path):
    data = explorer.explorer_data(*inputs(tmp_path), "run", SETTINGS)
    assert data["steps"] == [0, 1, 2] and data["matrices"] == ["W"]
    assert data["tokens"] == {"id": [0, 1, 2, 3], "text": ["the", "</script>", "NA", "ü"], "count": [5, 0, 7, 0],
                              "dead": [0, 1, 0, 1]}
    assert decoded(data["series"]["origin"][0]) == [5.0, 5.0, 10.0]
    # dead centroid: (0, 0), (1, 0), (1, 2); row 2 at (0, 0), (0, 1), (0, 1)
    assert decoded(data["series"]["centroid"][2]) == pytest.approx([0.0, 2 ** 0.5, 2 ** 0.5])
    assert data["final"]["origin"][1] == pytest.approx(8 ** 0.5, rel=1e-4)
    assert data["phases"]["W"]["frozen_from"] == [2, None, 1, 2] and data["phases"]["W"]["mid_from"] == [1] * 4


def test_a_token_table_or_lattice_table_lacking_a_recorded_token_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(AnalysisError, match=r"tokens.csv: no row for token ids \[3\]; rerun rule live_dead_tokens"):
        explorer.explorer_data(*inputs(tmp_path, tokens=TOKENS.iloc[:3]), "run", SETTINGS)
    with pytest.raises(AnalysisError, match=r"rows.tsv: the lattice rows of W lack recorded tokens; rerun rule lattice"):
        explorer.explorer_data(*inputs(tmp_path, lattice_tokens=(0, 1, 2)), "run", SETTINGS)


def test_the_page_embeds_the_data_inert_and_parses_back(tmp_path):
    data = explorer.explorer_data(*inputs(tmp_path), "run <b>", SETTINGS)
    page = explorer_page.render(data)
    assert page.count("</script>") == 2  # the data's and the code's: the token "</script>" is escaped
    embedded = page.split('<script id="data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(embedded) == data
    assert "<title>Token explorer: run &lt;b&gt;</title>" in page and "http" not in page  # no network

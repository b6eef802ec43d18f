"""The HTML report's tables: the token statistics and one summary row per run, each written as a small
self-contained HTML page (the report shows an HTML result inline; a TSV would only be a download)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from .analysis import read_table
from .outputs import write_text

# token_stats.json's keys, in the order and with the words the table shows.
TOKEN_STATS = {
    "bytes": "corpus bytes",
    "megabytes": "corpus MB (MiB)",
    "characters": "characters",
    "tokens": "tokens",
    "unk_share": "share of [UNK] tokens (text the tokenizer could not encode)",
    "training_windows": "training windows (one per offset)",
    "tokens_per_step": "tokens per step (batch x seq_len)",
    "steps": "optimizer steps",
    "notebook_epochs": "the notebooks' \"epochs\" (tokens seen / tokens)",
    "windows_drawn": "distinct windows drawn",
    "window_coverage": "window coverage (fraction of windows drawn)",
}
RUN_COLUMNS = ("run", "final loss", "dead rows of W: mean radius from their centroid, t = 0",
               "the same, last step", "dead rows of W: mean radius from the origin, last step",
               "dead rows of W moved at the last step")


def token_stats_rows(stats: dict) -> list[tuple[str, object]]:
    return [(label, stats[key]) for key, label in TOKEN_STATS.items()]


def run_summary_row(tying: str, seed: int, table_path: str | Path) -> tuple:
    """One run's row from its analysis table: W is where the dead rows move in both tyings (untied E's dead
    rows get no gradient)."""
    columns = ("step", "loss", "W_dead_radius_centroid_mean", "W_dead_radius_origin_mean", "W_dead_fraction_moved")
    table = read_table(table_path, required=columns).sort_values("step")
    first, last = table.iloc[0], table.iloc[-1]
    return (f"{tying} seed {seed}", last["loss"], first["W_dead_radius_centroid_mean"], last["W_dead_radius_centroid_mean"],
            last["W_dead_radius_origin_mean"], last["W_dead_fraction_moved"])


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.6g}"
    return html.escape(str(value))


def html_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    """A standalone page with one table, no scripts and nothing fetched."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "\n".join("<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #eee; }}
</style></head>
<body><table>
<caption>{html.escape(title)}</caption>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""


def write_token_stats(stats_path: str | Path, output: str | Path) -> None:
    stats = json.loads(Path(stats_path).read_text(encoding="utf-8"))
    write_text(output, html_table("Token statistics", ("quantity", "value"), token_stats_rows(stats)))


def write_run_summary(runs: list[tuple[str, int]], table_paths: list[str], output: str | Path) -> None:
    """`runs`: (tying, seed) of each analysis table, in the same order as `table_paths`."""
    rows = [run_summary_row(tying, seed, path) for (tying, seed), path in zip(runs, table_paths, strict=True)]
    write_text(output, html_table("Runs", RUN_COLUMNS, rows))

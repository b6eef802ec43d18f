"""The HTML report's tables: the token statistics, one summary row per run, and the first step explained,
each written as a small self-contained HTML page (the report shows an HTML result inline; a TSV would only be
a download)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from statistics import median

from ..outputs import read_table, write_text

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


def html_table(title: str, header: tuple[str, ...], rows: list[tuple], warning: str = "") -> str:
    """A standalone page with one table (and a warning above it, if any), no scripts and nothing fetched."""
    alert = f'<p class="warning"><strong>Warning:</strong> {html.escape(warning)}</p>\n' if warning else ""
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
.warning {{ color: #a00; }}
</style></head>
<body>{alert}<table>
<caption>{html.escape(title)}</caption>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""


FIRST_STEP_COLUMNS = ("matrix (runs)", "dead rows: mean displacement at step 1", "prediction lr x sqrt(D)",
                      "measured / predicted", "change of the dead radius from the origin, step 0 -> 1",
                      "change of the dead radius from the centroid, step 0 -> 1")


def first_step_rows(runs: list[tuple[str, int]], table_paths: list[str], n_embd: int) -> list[tuple]:
    """Adam's first update is lr g / (|g| + eps) per element, about +-lr, so a row whose gradient is nonzero in
    every coordinate moves by about lr sqrt(D) at step 1. Per matrix (tied W, untied W, untied E; the median
    over a tying's seeds), the measured step-1 displacement of the dead rows against that, and how the dead
    cloud's radius from the origin and from its centroid changed at step 1."""
    found = {"tied": [], "untied": []}
    for (tying, _seed), path in zip(runs, table_paths, strict=True):
        found[tying].append(read_table(path, ("step", "lr")).set_index("step"))
    rows = []
    for label, tying, side in (("tied W", "tied", "W"), ("untied W", "untied", "W"), ("untied E", "untied", "E")):
        if not found[tying]:
            continue
        column = f"{side}_dead_{{}}"
        measured = median(t.loc[1, column.format("displacement_step")] for t in found[tying])
        predicted = median(t.loc[1, "lr"] for t in found[tying]) * math.sqrt(n_embd)
        origin, centroid = (median(t.loc[1, column.format(f"radius_{kind}_mean")] - t.loc[0, column.format(f"radius_{kind}_mean")]
                                    for t in found[tying]) for kind in ("origin", "centroid"))
        rows.append((f"{label} ({len(found[tying])})", measured, predicted, measured / predicted, origin, centroid))
    return rows


def first_step_answer(rows: list[tuple]) -> str:
    """Notebook 1.20b's question, answered from the rows: does the step 0 -> 1 expansion of the dead cloud
    come from W (the unembedding), from E (the embedding), or from tying them?"""
    if rows and all(math.isnan(row[1]) for row in rows):
        return "No dead token: every token of the vocabulary occurs in the training corpus, so there is no dead cloud."
    growth = {row[0].split(" (")[0]: row[4] for row in rows}
    moved = [name for name, change in growth.items() if change > 0]
    numbers = ", ".join(f"{name} {change:+.3g}" for name, change in growth.items())
    if not moved:
        movers = [f"{row[0].split(' (')[0]} ({row[3]:.3g} x lr sqrt(D))" for row in rows if row[1] > 0]
        still = [row[0].split(" (")[0] for row in rows if row[1] == 0]
        return (f"No expansion at step 1 (change of the radius from the origin: {numbers}); the dead rows move in "
                f"{', '.join(movers) or 'no matrix'}" + (f" and not at all in {', '.join(still)}." if still else "."))
    if "untied W" not in growth:
        return f"The dead cloud expands at step 1 ({numbers}); an untied run would tell whether W or the tying does it."
    source = ("W, the unembedding, whether tied or not" if {"tied W", "untied W"} <= set(moved) and "untied E" not in moved
              else "tying E and W" if moved == ["tied W"] else ", ".join(moved))
    return f"The dead cloud's step-1 expansion from the origin comes from {source} (change of the radius: {numbers})."


def write_first_step(runs: list[tuple[str, int]], table_paths: list[str], n_embd: int, output: str | Path) -> None:
    rows = first_step_rows(runs, table_paths, n_embd)
    write_text(output, html_table(f"The first step explained. {first_step_answer(rows)}", FIRST_STEP_COLUMNS, rows))


def write_token_stats(stats_path: str | Path, output: str | Path) -> None:
    stats = json.loads(Path(stats_path).read_text(encoding="utf-8"))
    write_text(output, html_table("Token statistics", ("quantity", "value"), token_stats_rows(stats),
                                  stats.get("unk_warning", "")))


def write_run_summary(runs: list[tuple[str, int]], table_paths: list[str], output: str | Path) -> None:
    """`runs`: (tying, seed) of each analysis table, in the same order as `table_paths`."""
    rows = [run_summary_row(tying, seed, path) for (tying, seed), path in zip(runs, table_paths, strict=True)]
    write_text(output, html_table("Runs", RUN_COLUMNS, rows))


def _by_tying(runs: list[tuple[str, int]], paths: list[str], required=("step",)) -> dict[str, list]:
    found = {"tied": [], "untied": []}
    for (tying, _seed), path in zip(runs, paths, strict=True):
        found[tying].append(read_table(path, required))
    return found


def write_findings(runs: list[tuple[str, int]], table_paths: list[str], decomposition_paths: list[str],
                   lifespan_paths: list[str], output: str | Path) -> None:
    """Notebook 1.20b's four next steps and the series' open questions, answered with this experiment's numbers
    (flannel.report.findings); `lifespan_paths`: each run's lifespan run table, in `runs` order."""
    from .findings import findings_rows, open_question_rows

    found = _by_tying(runs, table_paths)
    decompositions = [read_table(path) for path in decomposition_paths]
    rows = findings_rows(found["tied"], found["untied"], decompositions) + open_question_rows(_by_tying(runs, lifespan_paths, ("matrix",)))
    write_text(output, html_table("Findings: notebook 1.20b's next steps and the series' open questions, answered "
                                  "(figure y_lifespan shows the open questions' measurements)",
                                  ("question", "answer", "numbers"), rows))

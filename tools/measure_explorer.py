"""Size and load time of the token explorer page at the notebooks' scale (issue 28: V = 10000 tokens x 1001
records must load in a browser in a few seconds).

Writes a synthetic tied recording of W (tools/measure_check_memory.py's write_run: 1001 records x V=10000 x
D=64 bf16, 1.2 GiB), a lattice rows table and a token table to match, builds the page as rule explorer does
(flannel.report.explorer, explorer_page) and opens it in headless Chromium with the browser test's helpers
(tests/workflow/test_report_browser.py), twice, beside a blank page for Chromium's own start-up. Prints the
build time, the page's size, and per load the wall time of the Chromium process and the page's own
performance.now() when its script has drawn everything (Chromium runs with a virtual-time budget, so the
wall times are the honest upper bound). The files are deleted afterwards unless --keep.

    python tools/measure_explorer.py [--dir /tmp] [--records 1001] [--vocab 10000] [--dim 64] [--points 200] [--keep]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tools"), str(ROOT / "tests"), str(ROOT / "tests" / "workflow")]

from flannel import config as flannel_config  # noqa: E402
from flannel.outputs import write_table, write_text  # noqa: E402
from flannel.report import explorer, explorer_page  # noqa: E402
from measure_check_memory import scale_arguments, scratch_folder, write_run  # noqa: E402
from test_report_browser import probe, probed  # noqa: E402

# Reported once the page's own script has run (it sets data-ready on <body> last).
READY = """<script>window.addEventListener("load", () => window.__report({ready: document.body.dataset.ready,
  ms: performance.now(), dead_rows: document.querySelectorAll("#dead-rows tr").length}));</script>"""


def synthetic_inputs(folder: Path, records: int, vocab: int, dim: int) -> tuple[Path, Path, Path]:
    config = flannel_config.defaults()
    config["training"]["steps"] = records - 1
    config["model"].update(vocab_size=vocab, n_embd=dim)
    dead = torch.sort(torch.randperm(vocab, generator=torch.Generator().manual_seed(0))[: int(0.37 * vocab)]).values
    run = folder / "tied" / "seed42.safetensors"
    write_run(run, config, 42, dead, keys=("embeddings",), tied=True)
    rng = np.random.default_rng(0)
    mid = rng.integers(1, records // 4, vocab)
    late = mid + rng.integers(0, records // 4, vocab)
    frozen = late + rng.integers(0, records // 2, vocab)
    is_dead = np.isin(np.arange(vocab), dead.numpy())
    write_table(pd.DataFrame({"matrix": "W", "token": np.arange(vocab), "dead": is_dead, "mid_from": mid,
                              "late_from": late, "frozen_from": frozen, "last_move": frozen - 1}), folder / "rows.tsv")
    pd.DataFrame({"token_id": np.arange(vocab), "token": [f"tok{i}" for i in range(vocab)],
                  "count": np.where(is_dead, 0, rng.integers(1, 10000, vocab)), "live": (~is_dead).astype(int)}
                 ).to_csv(folder / "tokens.csv", index=False)
    return run, folder / "rows.tsv", folder / "tokens.csv"


def load(page: Path) -> dict:
    wall = time.perf_counter()
    out, _ = probe(page)
    return {**out["seen"], "wall_s": round(time.perf_counter() - wall, 2)}


def main() -> None:
    parser = scale_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--points", type=int, default=200)
    args = parser.parse_args()
    with scratch_folder("flannel-explorer-", args.dir, args.keep) as folder:
        started = time.perf_counter()
        inputs = synthetic_inputs(folder, args.records, args.vocab, args.dim)
        print(f"synthetic recording: {inputs[0].stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        data = explorer.explorer_data(*inputs, "synthetic", {"max_points": args.points, "basis": "last_step"})
        page = folder / "explorer.html"
        write_text(page, explorer_page.render(data))
        print(f"page: {page.stat().st_size / 2**20:.1f} MiB ({args.vocab} tokens x {len(data['steps'])} points), "
              f"built in {time.perf_counter() - started:.1f} s")
        blank = folder / "blank.html"
        blank.write_text(probed("<html><head></head><body><script>window.addEventListener('load', () => "
                                "window.__report({ms: performance.now()}));</script></body></html>", viewer=False))
        body, end, rest = probed(page.read_text(encoding="utf-8"), viewer=False).rpartition("</body>")
        timed = folder / "timed.html"
        timed.write_text(body + READY + end + rest, encoding="utf-8")
        print(f"blank page: {load(blank)}")
        for attempt in (1, 2):
            print(f"explorer, load {attempt}: {load(timed)}")


if __name__ == "__main__":
    main()

"""Peak RSS and wall time of each per-run analysis over a synthetic recording at the notebooks' scale (issue 12:
each must stay within 2 GB).

Writes, with the streaming writer (tools/measure_check_memory.py's write_run), an untied run recording every
quantity (1001 records x V=10000 x D=64, bf16: embeddings, grads, momentum and variance of E and W, about
10 GB) and a tied one (about 5 GB, for the decomposition), then runs in a fresh process each what its rule's
script runs: the analysis table (flannel.analysis.per_step.analyse_run), the Adam accounting
(flannel.analysis.adam), the lattice tables (flannel.analysis.lattice), the epochs series
(flannel.analysis.epochs, from the lattice's rows table) and the decomposition
(flannel.analysis.per_step.decomposition), each writing its table(s). Prints each one's peak RSS, wall time and
seconds per GiB of recording read, and the four per-run analyses' total. The files are deleted afterwards unless
--keep.

    python tools/measure_analysis_memory.py [--dir /tmp] [--records 1001] [--vocab 10000] [--dim 64]
        [--only analyse_run ...] [--threads 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))

from flannel import config as flannel_config  # noqa: E402
from measure_check_memory import scale_arguments, scratch_folder, write_run  # noqa: E402

QUANTITIES = ("embeddings", "grads", "momentum", "variance")
LIMIT_MIB = 2048

# One analysis in a fresh process, as its rule's script runs it; prints its peak RSS and wall time as JSON.
CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
args = json.loads(sys.argv[2])
from flannel.analysis import adam, epochs, per_step, lattice
from flannel.outputs import read_table, write_table
started, cpu_started = time.perf_counter(), time.process_time()
name, runs, out = args["name"], args["runs"], args["out"]
if name == "analyse_run":
    write_table(per_step.analyse_run(runs["untied"], expected_config=args["expected"]), out + ".tsv")
elif name == "adam_accounting":
    write_table(adam.adam_accounting(runs["untied"]), out + ".tsv")
elif name == "lattice":
    steps, rows = lattice.lattice_tables(runs["untied"], args["settings"])
    write_table(steps, out + ".tsv")
    write_table(rows, out + ".rows.tsv")
elif name == "epochs":
    cloud = epochs.dead_cloud_series(runs["untied"], expected_config=args["expected"])
    rows = read_table(args["lattice_rows"], epochs.ROW_COLUMNS)
    write_table(epochs.series_table(cloud, rows, args["settings"]["speed_window"]), out + ".tsv")
elif name == "decomposition":
    write_table(per_step.decomposition(runs["tied"], runs["untied"], expected_config=args["expected"]), out + ".tsv")
print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# What each analysis reads: the untied run (epochs also the lattice's rows table), and for the decomposition the
# tied one too. In the order they can run: epochs after the lattice.
READS = {"analyse_run": ("untied",), "adam_accounting": ("untied",), "lattice": ("untied",), "epochs": ("untied",),
         "decomposition": ("tied", "untied")}
PER_RUN = ("analyse_run", "adam_accounting", "lattice", "epochs")  # the four analyses of every run


def synthetic_config(records: int, vocab: int, dim: int) -> dict:
    config = flannel_config.defaults()
    config["training"]["steps"] = records - 1
    config["model"].update(vocab_size=vocab, n_embd=dim)
    config["recording"]["quantities"] = [*QUANTITIES, "logits"]
    return config


def write_runs(folder: Path, config: dict) -> dict[str, Path]:
    vocab = config["model"]["vocab_size"]
    dead = torch.sort(torch.randperm(vocab, generator=torch.Generator().manual_seed(0))[: int(0.37 * vocab)]).values
    runs = {"untied": folder / "untied" / "seed42.safetensors", "tied": folder / "tied" / "seed42.safetensors"}
    write_run(runs["untied"], config, 42, dead, keys=[f"{q}_{side}" for q in QUANTITIES for side in ("E", "W")], tied=False)
    write_run(runs["tied"], config, 42, dead, keys=QUANTITIES, tied=True)
    return runs


def measure(name: str, runs: dict[str, Path], config: dict, folder: Path, threads: int = 1) -> dict:
    args = {"name": name, "runs": {k: str(p) for k, p in runs.items()}, "out": str(folder / name),
            "expected": json.loads(flannel_config.training_json(config)), "settings": config["analysis"],
            "lattice_rows": str(folder / "lattice.rows.tsv")}
    wall = time.perf_counter()
    # One thread, as Snakemake runs these rules (threads 1: it sets OMP_NUM_THREADS for the job); torch's
    # default of one per core is many times slower where other processes share the cores.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "src"), json.dumps(args)], check=True,
                            capture_output=True, text=True, env=env)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["process_seconds"] = time.perf_counter() - wall  # with the imports
    measured["read_gib"] = sum(runs[kind].stat().st_size for kind in READS[name]) / 2**30
    return measured


def main() -> None:
    parser = scale_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--only", nargs="*", choices=list(READS), default=list(READS))
    parser.add_argument("--threads", type=int, default=1, help="threads per analysis (the rules run with 1)")
    args = parser.parse_args()
    if "epochs" in args.only and "lattice" not in args.only:
        parser.error("--only epochs needs lattice too (epochs reads the lattice's rows table)")
    args.only = [name for name in READS if name in args.only]

    config = synthetic_config(args.records, args.vocab, args.dim)
    with scratch_folder("flannel-analysis-memory-", args.dir, args.keep) as folder:
        started = time.perf_counter()
        runs = write_runs(folder, config)
        sizes = ", ".join(f"{kind} {path.stat().st_size / 2**30:.2f} GiB" for kind, path in runs.items())
        print(f"wrote {sizes} in {time.perf_counter() - started:.0f} s")
        worst, per_run, per_run_cpu = 0.0, 0.0, 0.0
        for name in args.only:
            m = measure(name, runs, config, folder, args.threads)
            worst = max(worst, m["peak_rss_mib"])
            per_run += m["seconds"] if name in PER_RUN else 0.0
            per_run_cpu += m["cpu_seconds"] if name in PER_RUN else 0.0
            print(f"{name}: peak RSS {m['peak_rss_mib']:.0f} MiB, {m['seconds']:.1f} s ({m['cpu_seconds']:.1f} s CPU) "
                  f"over {m['read_gib']:.2f} GiB "
                  f"({m['seconds'] / m['read_gib']:.1f} s/GiB; {m['process_seconds']:.0f} s with the imports)", flush=True)
        measured = [name for name in PER_RUN if name in args.only]
        # CPU time beside wall time: on a shared machine the wall time measures the neighbours too.
        print(f"the per-run analyses ({', '.join(measured)}) of the untied run: {per_run:.0f} s in total "
              f"({per_run_cpu:.0f} s CPU), {per_run * 1000 / args.records:.0f} s per 1,000 records "
              f"({per_run_cpu * 1000 / args.records:.0f} s CPU)")
        print(f"highest peak RSS {worst:.0f} MiB: {'within' if worst <= LIMIT_MIB else 'OVER'} {LIMIT_MIB} MiB")


if __name__ == "__main__":
    main()

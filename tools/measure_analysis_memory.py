"""Peak RSS and wall time of each per-run analysis over a synthetic recording at the notebooks' scale (issue 12:
each must stay within 2 GB).

Writes, with the streaming writer (tools/measure_check_memory.py's write_run), an untied run recording every
quantity (1001 records x V=10000 x D=64, bf16: embeddings, grads, momentum and variance of E and W, about
10 GB) and a tied one (about 5 GB, for the decomposition), then runs in a fresh process each what its rule's
script runs: the analysis table (flannel.analysis.per_step.analyse_run), the Adam accounting
(flannel.analysis.adam), the lattice tables (flannel.analysis.lattice), the epochs series
(flannel.analysis.epochs, from the lattice's rows table), the decomposition
(flannel.analysis.per_step.decomposition) and the tied/untied distances (flannel.analysis.distances), each
writing its table(s). Prints each one's peak RSS, wall time and
seconds per GiB of recording read, and the four per-run analyses' total. Then the one-pass figure: one read of
every record the four analyses read (flannel.recording.Recording, each matrix once), timed alone; each analysis's
own reads of it (the same reads, of the matrices that analysis reads); and what the four would take computed in
one read of the recording (their total, less their own reads, plus the one read). The files are deleted
afterwards unless --keep. `--recording PATH` measures the four per-run analyses of an existing untied recording
(safetensors or compact, e.g. a real run's) instead of synthetic ones.

    python tools/measure_analysis_memory.py [--dir /tmp] [--records 1001] [--vocab 10000] [--dim 64]
        [--only analyse_run ...] [--threads 1] [--keep] [--recording PATH]
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
elif name == "distances":
    from flannel.analysis import distances
    table, rows = distances.tied_untied(runs["tied"], runs["untied"], expected_config=args["expected"])
    write_table(table, out + ".tsv")
    distances.write_rows(rows, out + ".rows.safetensors")
elif name == "read":
    from flannel.recording import Recording
    recording = Recording(runs["untied"])
    keys = sorted(k for k in recording.keys if k.split("_")[0] in args["matrices"])
    seconds = dict.fromkeys(keys, 0.0)
    for index in range(recording.n_records):  # record by record, as the analyses read
        for key in keys:
            begun = time.process_time()
            recording.record(key, index).clone()  # touched: a safetensors slice may be a view of the file's map
            seconds[key] += time.process_time() - begun
    print(json.dumps(seconds))
print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# What each analysis reads: the untied run (epochs also the lattice's rows table), and for the decomposition and
# the distances the tied one too. In the order they can run: epochs after the lattice.
READS = {"analyse_run": ("untied",), "adam_accounting": ("untied",), "lattice": ("untied",), "epochs": ("untied",),
         "decomposition": ("tied", "untied"), "distances": ("tied", "untied")}
PER_RUN = ("analyse_run", "adam_accounting", "lattice", "epochs")  # the four analyses of every run
# The recorded matrices each per-run analysis reads, every record of each side.
MATRICES = {"analyse_run": QUANTITIES, "adam_accounting": QUANTITIES, "lattice": ("embeddings",),
            "epochs": ("embeddings",)}


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
            "lattice_rows": str(folder / "lattice.rows.tsv"), "matrices": QUANTITIES}
    wall = time.perf_counter()
    # One thread, as Snakemake runs these rules (threads 1: it sets OMP_NUM_THREADS for the job); torch's
    # default of one per core is many times slower where other processes share the cores.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "src"), json.dumps(args)], check=True,
                            capture_output=True, text=True, env=env)
    lines = result.stdout.strip().splitlines()
    measured = json.loads(lines[-1])
    if name == "read":
        measured["per_key"] = json.loads(lines[-2])
    measured["process_seconds"] = time.perf_counter() - wall  # with the imports
    measured["read_gib"] = sum(runs[kind].stat().st_size for kind in READS.get(name, ("untied",))) / 2**30
    return measured


def main() -> None:
    parser = scale_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--only", nargs="*", choices=list(READS), default=list(READS))
    parser.add_argument("--threads", type=int, default=1, help="threads per analysis (the rules run with 1)")
    parser.add_argument("--recording", type=Path, help="an existing untied recording to measure instead")
    args = parser.parse_args()
    if "epochs" in args.only and "lattice" not in args.only:
        parser.error("--only epochs needs lattice too (epochs reads the lattice's rows table)")
    args.only = [name for name in READS if name in args.only and (args.recording is None or name in PER_RUN)]

    with scratch_folder("flannel-analysis-memory-", args.dir, args.keep) as folder:
        runs, config = recordings(args, folder)
        worst, cpu = 0.0, {}
        per_run = 0.0
        for name in args.only:
            m = measure(name, runs, config, folder, args.threads)
            worst = max(worst, m["peak_rss_mib"])
            per_run += m["seconds"] if name in PER_RUN else 0.0
            cpu[name] = m["cpu_seconds"]
            print(f"{name}: peak RSS {m['peak_rss_mib']:.0f} MiB, {m['seconds']:.1f} s ({m['cpu_seconds']:.1f} s CPU) "
                  f"over {m['read_gib']:.2f} GiB "
                  f"({m['seconds'] / m['read_gib']:.1f} s/GiB; {m['process_seconds']:.0f} s with the imports)", flush=True)
        measured = [name for name in PER_RUN if name in args.only]
        records = config["training"]["steps"] // config["recording"]["record_every"] + 1
        per_run_cpu = sum(cpu[name] for name in measured)
        if measured:
            # CPU time beside wall time: on a shared machine the wall time measures the neighbours too.
            print(f"the per-run analyses ({', '.join(measured)}) of the untied run: {per_run:.0f} s in total "
                  f"({per_run_cpu:.0f} s CPU), {per_run * 1000 / records:.0f} s per 1,000 records "
                  f"({per_run_cpu * 1000 / records:.0f} s CPU)")
            one_pass(runs, config, folder, args.threads, {name: cpu[name] for name in measured}, records)
        print(f"highest peak RSS {worst:.0f} MiB: {'within' if worst <= LIMIT_MIB else 'OVER'} {LIMIT_MIB} MiB")


def recordings(args, folder: Path) -> tuple[dict[str, Path], dict]:
    """The recordings to measure and their config: synthetic ones written now, or the one named."""
    if args.recording is not None:
        from flannel.recording import Recording

        config = Recording(args.recording).config
        config["analysis"] = flannel_config.defaults()["analysis"]
        return {"untied": args.recording}, config
    config = synthetic_config(args.records, args.vocab, args.dim)
    started = time.perf_counter()
    runs = write_runs(folder, config)
    sizes = ", ".join(f"{kind} {path.stat().st_size / 2**30:.2f} GiB" for kind, path in runs.items())
    print(f"wrote {sizes} in {time.perf_counter() - started:.0f} s")
    return runs, config


def one_pass(runs: dict[str, Path], config: dict, folder: Path, threads: int, cpu: dict[str, float], records: int) -> None:
    """The one-pass figure (CPU seconds): one read of every record the analyses read, each analysis's own
    share of reads, and the analyses' total with their separate reads replaced by that one read."""
    read = measure("read", runs, config, folder, threads)["per_key"]
    own = {name: sum(s for key, s in read.items() if key.split("_")[0] in MATRICES[name]) for name in cpu}
    union = {key for key in read for name in cpu if key.split("_")[0] in MATRICES[name]}
    once = sum(read[key] for key in union)
    print(f"one read of the recording ({', '.join(sorted(union))}): {once:.1f} s CPU "
          f"({once * 1000 / records:.0f} s per 1,000 records)")
    for name, seconds in cpu.items():
        print(f"  {name}: {seconds:.1f} s CPU, of which reading {own[name]:.1f} s, computing {seconds - own[name]:.1f} s")
    total = sum(cpu.values())
    single = total - sum(own.values()) + once
    print(f"one-pass / total: {single:.0f} s / {total:.0f} s CPU in one read against each analysis's own "
          f"({single * 1000 / records:.0f} / {total * 1000 / records:.0f} s per 1,000 records)")


if __name__ == "__main__":
    main()

"""Peak RSS of the sanity check over large synthetic recordings (issue 4: lazy reads keep it under 2 GB).

Writes, with the streaming writer, a tied reference run, a second sweep member and a byte-identical replica
at the notebooks' scale (1001 records x V=10000 x D=64, bf16, `embeddings` and `grads`: about 2.6 GB each),
then runs the check (flannel.sanity.report.sanity_report + flannel.sanity.render.write_report, as the rule
does) in a fresh process and prints that process's peak RSS. The files are deleted afterwards unless --keep.

    python tools/measure_check_memory.py [--dir /tmp] [--records 1001] [--vocab 10000] [--dim 64] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from flannel import config as flannel_config  # noqa: E402
from flannel.recording import FORMAT, StreamingSafetensors  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from flannel.config import sanity_settings
from flannel.sanity.render import write_report
from flannel.sanity.report import sanity_report
args = json.loads(sys.argv[2])
started = time.perf_counter()
runs = {tuple(k.split(":")[:1]) + (int(k.split(":")[1]),): p for k, p in args["runs"].items()}
replicas = {tuple(k.split(":")[:1]) + (int(k.split(":")[1]),): p for k, p in args["replicas"].items()}
report = sanity_report(sanity_settings(args["config"]), runs=runs, replicas=replicas, masks=args["masks"], root=args["root"])
write_report(report, *args["outputs"])
print(json.dumps({"passed": report["passed"], "seconds": round(time.perf_counter() - started, 1),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def write_run(path: Path, config: dict, seed: int, dead: torch.Tensor, keys=("embeddings", "grads"), tied: bool = True) -> None:
    """A finished recording of synthetic values with every record of `keys` ([T, V, D] bf16 matrices). Variance
    keys get non-negative values and grad_norms is written, so an Adam replay runs its whole arithmetic."""
    T, V, D = config["training"]["steps"] + 1, config["model"]["vocab_size"], config["model"]["n_embd"]
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(V, D, generator=g) * config["model"]["init_scale"]
    noise = torch.randn(16, V, D, generator=g) * 1e-3  # a small pool, so writing is I/O-bound, not randn-bound
    scalars = {"init_scale": torch.tensor(config["model"]["init_scale"]), "n_dead": torch.tensor(dead.numel()),
               "tied_weights": torch.tensor(tied), "dead_indices": dead, "recorded_rows": torch.arange(V),
               "recorded_steps": torch.arange(T), "losses": torch.zeros(T), "grad_norms": torch.ones(T)}
    specs = {k: (torch.bfloat16, (T, V, D)) for k in keys} | {k: (v.dtype, tuple(v.shape)) for k, v in scalars.items()}
    metadata = {"format": FORMAT, "complete": "false", "tying": "tied" if tied else "untied", "seed": str(seed),
                "data_seed": str(seed), "config": flannel_config.training_json(config),
                "state_sha256_initial": f"{seed:064x}", "state_sha256_final": "0" * 64}
    writer = StreamingSafetensors(path, specs, metadata)
    for name, value in scalars.items():
        writer.write(name, value)
    for t in range(T):
        for k in keys:
            value = base + noise[t % 16] * (t > 0)
            writer.write(k, value.abs() if k.startswith("variance") else value, t)
    writer.finish({"complete": "true", "state_sha256_final": f"{seed + 1:064x}"})


def scale_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--dir, --records, --vocab, --dim and --keep (shared with tools/measure_analysis_memory.py)."""
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--records", type=int, default=1001)
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--keep", action="store_true")
    return parser


@contextlib.contextmanager
def scratch_folder(prefix: str, directory: str, keep: bool):
    """A new folder for the synthetic recordings, deleted afterwards (they are GBs) unless `keep`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    args = scale_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0])).parse_args()

    config = flannel_config.defaults()
    config["training"]["steps"] = args.records - 1
    config["model"].update(vocab_size=args.vocab, n_embd=args.dim)
    config["runs"].update(tied=[42, 43], untied=[], reference_seed=42)
    with scratch_folder("flannel-memory-", args.dir, args.keep) as folder:
        dead = torch.sort(torch.randperm(args.vocab, generator=torch.Generator().manual_seed(0))[: int(0.37 * args.vocab)]).values
        mask = torch.zeros(args.vocab, dtype=torch.bool)
        mask[dead] = True
        from safetensors.torch import save_file

        save_file({"dead_mask": mask, "live_mask": ~mask, "dead_indices": dead}, str(folder / "masks.safetensors"))
        started = time.perf_counter()
        runs = {f"tied:{seed}": folder / "runs" / "tied" / f"seed{seed}.safetensors" for seed in (42, 43)}
        for key, path in runs.items():
            write_run(path, config, int(key.split(":")[1]), dead)
        replica = folder / "replica" / "tied" / "seed42.safetensors"
        replica.parent.mkdir(parents=True)
        shutil.copyfile(runs["tied:42"], replica)
        files = [*runs.values(), replica]
        total = sum(p.stat().st_size for p in files)
        print(f"wrote {len(files)} recordings, {total / 2**30:.2f} GiB, in {time.perf_counter() - started:.0f} s")
        child_args = {"config": config, "runs": {k: str(p) for k, p in runs.items()}, "replicas": {"tied:42": str(replica)},
                      "masks": str(folder / "masks.safetensors"), "root": str(folder),
                      "outputs": [str(folder / n) for n in ("report.json", "report.md", "manifest.tsv")]}
        result = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "src"), json.dumps(child_args)],
                                check=True, capture_output=True, text=True)
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"check over {total / 2**30:.2f} GiB: peak RSS {measured['peak_rss_mib']} MiB, "
              f"{measured['seconds']} s, report passed: {measured['passed']}")


if __name__ == "__main__":
    main()

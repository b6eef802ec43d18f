"""Throughput and peak memory of flannel's training against a plain PyTorch loop and the notebooks' code.

Not a test: it prints a table. Each measurement runs in a fresh Python process (this script with --worker), so
peak RSS is that configuration's own (getrusage(RUSAGE_SELF).ru_maxrss of the worker, which includes the ~0.3 GB
of torch/transformers themselves) and no allocator state carries over. Rates cover steps 2..N (step 1, the
allocator's warm-up, and all setup left out), each step with its recording, timed from the end of step 1 to the
end of step N by train_run's own per-step progress log, the Trainer's on_step_end callback, or the plain loop's
clock; both wall-clock steps/s and steps per CPU-second are printed, the latter being less sensitive to other
processes on a shared machine. Repeats are interleaved across configurations, in a rotating order, and medians
are printed, so that a busy patch of time does not land on one configuration only.

Recording "off" is train_run with record_every = steps: the same code path, two records (0 and the last).
"compact" rows record every step into the compact format (flannel.compact), whose encoding and write-time
replay check run on the recorder's thread beside training (the job's one core counts their CPU time too:
steps per CPU-second is over the whole process). --reads adds read rates of each recording.
Rows ending in "native" run with training.portable_numerics false (each CPU's fastest kernels); the others pin
the portable kernels (flannel.training.numerics), as the workflow does by default.

    python tools/benchmark.py                 # notebook config: V=10000, D=64, 2 layers, 2 heads, seq 128, batch 32
    python tools/benchmark.py --quick         # small dims, a smoke run of every row
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from flannel.training.numerics import PORTABLE_ENVIRONMENT  # noqa: E402  (imports nothing heavy)

# name -> (kind, precision (param/compute), recording, description)
CONFIGS = {
    "fast_rec": ("train_run", ("bfloat16", "float32"), "every", "train_run fast path bf16/fp32, record every step"),
    "fast_off": ("train_run", ("bfloat16", "float32"), "off", "train_run fast path bf16/fp32, recording off"),
    "fast_compact": ("train_run", ("bfloat16", "float32"), "compact", "fast path, record every step, compact format"),
    "fast_rec_native": ("train_run", ("bfloat16", "float32"), "every", "fast path, record every step, native kernels"),
    "faithful_rec": ("train_run", ("bfloat16", "bfloat16"), "every", "train_run faithful path bf16/bf16, record every step"),
    "faithful_off": ("train_run", ("bfloat16", "bfloat16"), "off", "train_run faithful path bf16/bf16, recording off"),
    "faithful_compact": ("train_run", ("bfloat16", "bfloat16"), "compact", "faithful path, record every step, compact"),
    "faithful_rec_native": ("train_run", ("bfloat16", "bfloat16"), "every", "faithful path, record every step, native kernels"),
    "plain_fp32": ("plain", ("float32", "float32"), "off", "plain fp32 PyTorch loop (AdamW only)"),
    "notebook": ("notebook", ("bfloat16", "bfloat16"), "every", "notebooks' Trainer + in-RAM recorder (+stack, save)"),
}


def model_config(args) -> dict:
    return {"vocab_size": args.vocab, "n_positions": args.seq_len, "n_embd": args.n_embd, "n_layer": args.n_layer,
            "n_head": args.n_head, "init_scale": 0.02, "attention": "sdpa"}


def prepare_data(args) -> Path:
    """Token ids of the corpus (the demo corpus unless --corpus), cached in --workdir."""
    from flannel.data import tokens
    from flannel.data.corpus import demo_corpora

    folder = Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
    ids_path = folder / f"token_ids_v{args.vocab}.safetensors"
    if args.corpus:
        ids_path = folder / f"token_ids_{Path(args.corpus).stem}_v{args.vocab}.safetensors"
    if ids_path.is_file():
        return ids_path
    if args.corpus:
        corpus = Path(args.corpus)
        tokenizer = (tokens.load_tokenizer(args.tokenizer, args.vocab) if args.tokenizer
                     else tokens.train_tokenizer(corpus, args.vocab))
    else:
        model_text, tokenizer_text = demo_corpora(0, args.demo_words, args.demo_extra_words)
        corpus, tokenizer_corpus = folder / "demo_model.txt", folder / "demo_tokenizer.txt"
        corpus.write_text(model_text, encoding="utf-8")
        tokenizer_corpus.write_text(tokenizer_text, encoding="utf-8")
        tokenizer = (tokens.load_tokenizer(args.tokenizer, args.vocab) if args.tokenizer
                     else tokens.train_tokenizer(tokenizer_corpus, args.vocab))
    tokens.save_token_ids(tokens.tokenize(corpus, tokenizer, args.vocab), ids_path)
    return ids_path


# ---------------------------------------------------------------------------------------------- workers


class _StepClock(logging.Handler):
    """train_run logs every step here (log_every = 1): note wall and CPU time at the end of step 1 and of the
    last step, so the rate covers steps 2..N, each with its recording, as in the other rows."""

    def __init__(self):
        super().__init__()
        self.first = self.last = None

    def emit(self, record):
        if record.funcName != "_log_progress":  # the per-step progress lines only
            return
        now = (time.perf_counter(), time.process_time())
        if record.args[2] == 1:
            self.first = now
        self.last = now


def _rates(steps: int, first, last) -> dict:
    return {"steps_per_s": (steps - 1) / (last[0] - first[0]), "steps_per_cpu_s": (steps - 1) / (last[1] - first[1])}


def worker_train_run(args, name: str, ids, out_folder: Path) -> dict:
    from flannel import config as flannel_config
    from flannel.data import tokens
    from flannel.training.loop import Run, train_run

    _, (param_dtype, compute_dtype), recording, _ = CONFIGS[name]
    config = flannel_config.defaults()
    config["model"].update(model_config(args))
    config["training"].update({"steps": args.steps, "batch_size": args.batch, "seq_len": args.seq_len,
                               "objective": "skip_one", "param_dtype": param_dtype, "compute_dtype": compute_dtype,
                               "device": args.device, "threads": args.threads, "log_every": 1,
                               "portable_numerics": portable(name)})
    config["recording"].update({"record_every": args.steps if recording == "off" else 1, "rows": "all"})
    config = flannel_config.validate(config)
    clock = _StepClock()
    log = logging.getLogger("flannel.training.loop")
    log.addHandler(clock)
    log.setLevel(logging.INFO)
    log.propagate = False
    out = out_folder / ("run.zarr.zip" if recording == "compact" else "run.safetensors")
    train_run(config, Run(args.tying, args.seed), ids, tokens.live_dead(ids, args.vocab), out)
    size = out.stat().st_size
    reads = read_rates(out) if args.reads and recording != "off" else {}
    out.unlink()
    return {**_rates(args.steps, clock.first, clock.last), "file_mb": size / 2**20, **reads}


def read_rates(path: Path) -> dict:
    """Seconds to read one record of embeddings_W (or embeddings) at random, the median of five in a freshly
    opened file (so a compact chunk is decoded each time), and MB/s of decoded bytes over a sequential pass
    over every record of every matrix, as the analyses read."""
    import random

    from flannel.recording import Recording

    recording = Recording(path)
    key, records = recording.matrix("embeddings"), recording.n_records
    matrices = sorted(k for k in recording.keys if len(recording.shape(k)) == 3)
    one = []
    for index in random.Random(0).sample(range(records), min(5, records)):
        fresh = Recording(path)
        start = time.perf_counter()
        fresh.record(key, index)
        one.append(time.perf_counter() - start)
    start, decoded = time.perf_counter(), 0
    for index in range(records):
        for name in matrices:
            tensor = recording.record(name, index)
            decoded += tensor.numel() * tensor.element_size()
    return {"record_read_s": statistics.median(one), "pass_mb_per_s": decoded / 2**20 / (time.perf_counter() - start),
            "bytes_per_record": path.stat().st_size / records}


def worker_plain(args, ids) -> dict:
    """The same model in fp32, AdamW with its defaults, nothing else: no clipping, no schedule, no recorder."""
    import torch
    import torch.nn.functional as F

    from flannel.training.loop import window_batches
    from flannel.training.model import build_model

    torch.set_num_threads(args.threads)
    model = build_model(model_config(args), args.tying == "tied", args.seed, torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = window_batches(ids.numel(), args.seq_len, args.batch, args.seed)
    offsets = torch.arange(args.seq_len + 1)
    first = None
    for _ in range(args.steps):
        window = ids[next(batches)[:, None] + offsets]
        logits = model(input_ids=window[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), window[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        last = (time.perf_counter(), time.process_time())
        first = first or last
    return _rates(args.steps, first, last)


def worker_notebook(args, ids, out_folder: Path) -> dict:
    """The notebooks' code (tests/notebook.py): their model and init, Trainer and in-RAM recorder, then their
    stack-and-save_file of the whole recording."""
    import torch
    from safetensors.torch import save_file
    from transformers import TrainerCallback

    sys.path.insert(0, str(ROOT / "tests"))
    from notebook import notebook_model, run_notebook

    class StepClock(TrainerCallback):
        """Wall and CPU time at the end of step 1 and of the last step (on_step_end comes just before the hook
        that records that step), so the rate covers steps 2..N as in the other rows."""

        first = last = None

        def on_step_end(self, args, state, control, **kwargs):
            now = (time.perf_counter(), time.process_time())
            self.first = self.first or now
            self.last = now

    torch.set_num_threads(args.threads)
    model = notebook_model(args.vocab, args.seq_len, args.n_embd, args.n_layer, args.n_head, tied=args.tying == "tied",
                           seed=args.seed)
    clock = StepClock()
    trainer, recorder = run_notebook(model, ids, seq_len=args.seq_len, steps=args.steps, batch_size=args.batch,
                                     output_dir=str(out_folder), tied=args.tying == "tied", seed=args.seed,
                                     callbacks=[clock])
    started = time.perf_counter()
    save_file(recorder.get_data(), str(out_folder / "notebook.safetensors"))
    return {**_rates(args.steps, clock.first, clock.last), "records": len(recorder.recorded_steps),
            "hook_calls": trainer.hook_calls, "save_s": time.perf_counter() - started}


def portable(name: str) -> bool:
    return not name.endswith("_native")


def run_worker(args) -> None:
    from flannel.training.numerics import pin_cpu_kernels

    pin_cpu_kernels(CONFIGS[args.worker][0] == "train_run" and portable(args.worker))  # before torch loads
    import torch
    from safetensors.numpy import load_file as load_numpy

    logging.basicConfig(level=logging.WARNING)
    ids = torch.from_numpy(load_numpy(args.token_ids)["token_ids"].astype("int64"))
    kind = CONFIGS[args.worker][0]
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        if kind == "train_run":
            result = worker_train_run(args, args.worker, ids, Path(folder))
        elif kind == "plain":
            result = worker_plain(args, ids)
        else:
            result = worker_notebook(args, ids, Path(folder))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# ---------------------------------------------------------------------------------------------- driver


def measure(args, name: str, steps: int, ids_path: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--token-ids", str(ids_path),
               "--steps", str(steps)] + [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in
                                         ("vocab", "n_embd", "n_layer", "n_head", "seq_len", "batch", "seed", "tying",
                                          "threads", "workdir", "device")] + (["--reads"] if args.reads else [])
    env = {key: value for key, value in os.environ.items() if key not in PORTABLE_ENVIRONMENT}
    env.update({"PYTHONPATH": str(ROOT / "src"), "TRANSFORMERS_VERBOSITY": "error"})
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{name} ({steps} steps) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per throughput measurement (default 50)")
    parser.add_argument("--rss-steps", default="50,200",
                        help="step counts of the RSS-flatness check (train_run fast path, every-step full recording)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per configuration (median printed)")
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tying", choices=["tied", "untied"], default="untied")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (flannel's default: 1)")
    parser.add_argument("--device", choices=["cpu", "cuda", "mps"], default="cpu",
                        help="device of the train_run rows (the portable kernels pin CPU kernels only)")
    parser.add_argument("--only", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--corpus", help="model corpus (default: the embedded demo corpus)")
    parser.add_argument("--tokenizer", help="tokenizers JSON (default: a BPE trained here)")
    parser.add_argument("--demo-words", type=int, default=600000)
    parser.add_argument("--demo-extra-words", type=int, default=300000)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "flannel-benchmark"),
                        help="data cache and scratch for recordings (a 200-step full-vocab recording is ~2 GB)")
    parser.add_argument("--quick", action="store_true", help="small dims and few steps: a smoke run")
    parser.add_argument("--reads", action="store_true",
                        help="also time reads of each recording: one record at random, and a sequential pass")
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--token-ids", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    if args.quick:
        args.vocab, args.n_embd, args.seq_len, args.batch = 2000, 32, 32, 8
        args.steps, args.rss_steps, args.repeats = 10, "10,40", 1
        args.demo_words, args.demo_extra_words = 100000, 50000

    ids_path = prepare_data(args)
    names = [n for n in args.only.split(",") if n]
    results = {name: [] for name in names}
    for repeat in range(args.repeats):
        # Rotate the order each round, so a drift in the machine's load does not always favour the same row.
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            results[name].append(measure(args, name, args.steps, ids_path))
            print(f"  [{repeat + 1}/{args.repeats}] {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    rss_steps = [int(n) for n in args.rss_steps.split(",") if n]
    rss_runs = {}
    for steps in rss_steps:
        rss_runs[steps] = measure(args, "fast_rec", steps, ids_path)
        print(f"  RSS check fast_rec {steps} steps: {rss_runs[steps]}", file=sys.stderr, flush=True)

    print(f"config: V={args.vocab} n_embd={args.n_embd} n_layer={args.n_layer} n_head={args.n_head} "
          f"seq_len={args.seq_len} batch={args.batch} {args.tying}, {args.device}, {args.threads} thread(s); {args.steps} steps "
          f"(rates over steps 2..{args.steps}); median of {args.repeats}; 1-min load at the end {os.getloadavg()[0]:.2f}")
    print(f"{'configuration':<58} {'steps/s':>7} {'(min-max)':>11} {'steps/CPU-s':>11} {'peak RSS MB':>11}")
    rows = {name: results[name] for name in names}
    labels = {name: CONFIGS[name][3] for name in names}
    for steps, run in rss_runs.items():
        rows[f"rss{steps}"], labels[f"rss{steps}"] = [run], f"RSS check: fast path, record every step, {steps} steps"
    median = {}
    for name, runs in rows.items():
        wall = [r["steps_per_s"] for r in runs]
        median[name] = {"wall": statistics.median(wall), "cpu": statistics.median(r["steps_per_cpu_s"] for r in runs),
                        "rss": statistics.median(r["peak_rss_mb"] for r in runs)}
        spread = f"({min(wall):.2f}-{max(wall):.2f})"
        print(f"{labels[name]:<58} {median[name]['wall']:>7.3f} {spread:>11} {median[name]['cpu']:>11.3f} "
              f"{median[name]['rss']:>11.0f}")
    for name in names:
        runs = results[name]
        if runs and "record_read_s" in runs[0]:
            print(f"{labels[name]:<58} {statistics.median(r['bytes_per_record'] for r in runs) / 2**20:.2f} MB/record, "
                  f"one record read in {statistics.median(r['record_read_s'] for r in runs):.3f} s, sequential pass "
                  f"{statistics.median(r['pass_mb_per_s'] for r in runs):.0f} MB/s decoded")
    if "notebook" in names:
        last = results["notebook"][-1]
        print(f"notebook recorder: {last['records']} records for {args.steps} steps, hook called {last['hook_calls']} "
              f"times; its stack + save_file took {statistics.median(r['save_s'] for r in results['notebook']):.1f} s "
              f"(not in its rate)")

    print("targets (wall-clock / CPU-time rates):")

    def target(label, ok, detail):
        print(f"  [{'met' if ok else 'MISSED'}] {label}: {detail}")

    def ratio(a, b):
        return median[a]["wall"] / median[b]["wall"], median[a]["cpu"] / median[b]["cpu"]

    for path in ("fast", "faithful"):
        if {f"{path}_rec", f"{path}_rec_native"} <= median.keys():
            cost = [1 / r - 1 for r in ratio(f"{path}_rec", f"{path}_rec_native")]
            target(f"portable numerics cost <= 30 % ({path} path)", max(cost) <= 0.30,
                   " / ".join(f"{100 * c:+.1f} % time per step" for c in cost))
        if {f"{path}_rec", f"{path}_off"} <= median.keys():
            overhead = [1 - r for r in ratio(f"{path}_rec", f"{path}_off")]
            target(f"recording overhead <= 10 % ({path} path)", max(overhead) <= 0.10,
                   " / ".join(f"{100 * o:.1f} %" for o in overhead))
        if {f"{path}_rec", f"{path}_compact"} <= median.keys():
            slowdown = [1 / r - 1 for r in ratio(f"{path}_compact", f"{path}_rec")]
            target(f"compact recorder at most 10 % slower than safetensors ({path} path)", max(slowdown) <= 0.10,
                   " / ".join(f"{100 * c:+.1f} % time per step" for c in slowdown))
    for name in ("fast_off", "fast_rec"):
        if {name, "plain_fp32"} <= median.keys():
            r = ratio(name, "plain_fp32")
            target(f"{labels[name]} within 15 % of the plain fp32 loop", min(r) >= 0.85,
                   " / ".join(f"{100 * x:.0f} % of its speed" for x in r))
    if {"faithful_rec", "notebook"} <= median.keys():
        r = ratio("faithful_rec", "notebook")
        target("faithful path (record every step) no slower than the notebook code", min(r) >= 1.0,
               " / ".join(f"{x:.2f}x its speed" for x in r))
    if len(rss_steps) >= 2:
        short, long = (median[f"rss{n}"]["rss"] for n in (rss_steps[0], rss_steps[-1]))
        growth = long / short - 1
        target(f"peak RSS flat in steps ({rss_steps[0]} vs {rss_steps[-1]}, within 5 %)", abs(growth) <= 0.05,
               f"{short:.0f} -> {long:.0f} MB ({100 * growth:+.1f} %)")
    for name in ["fast_rec", "faithful_rec"] + [f"rss{n}" for n in rss_steps]:
        if name in median:
            target(f"peak RSS <= 1.5 GB, full-vocab {args.tying} recording ({labels[name]})",
                   median[name]["rss"] <= 1536, f"{median[name]['rss']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

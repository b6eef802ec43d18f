"""The Flannel 1 vs Flannel 3 sanity checks of notebook 1.22e, as a report with a verdict.

In this workflow the tied runs of the config's seeds are the sweep ("Flannel 3") and its reference-seed
member is the reference ("Flannel 1"). Every run trains in its own job, so the sweep member and the
reference are one file; the run that can show state leaking between runs is the replica, retrained after
another seed in one process (`train_replica`). So checks 3, 4 and 7 compare each reference run with its
replica. The same checks also run on the notebooks' own files (the 1.20a and 1.20c layouts) when the config
names them.

Every read is one record of one tensor (safetensors slices), so the checks' memory does not grow with the
length or the number of the recordings.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .outputs import sha256_file, write_json, write_text
from .config import ConfigError, replica_warmup_seed
from .recording import Recording, RecordingError

CHECKS = {  # name: (number, title)
    "dead_indices": (1, "Dead indices equal the canonical masks"),
    "record_counts": (2, "Every run holds steps/record_every + 1 records"),
    "initial_state": (3, "t=0 identical between the reference and its sweep twin, whole model"),
    "step_differences": (4, "Frobenius differences at the compare steps"),
    "sweep_distinct": (5, "The sweep's runs differ from each other at t=0"),
    "radius": (6, "Mean radius of the dead cloud from its centroid"),
    "replica": (7, "Replica vs original, every tensor bitwise"),
    "manifest": (8, "Manifest of the run files"),
}
# The checks whose failure means "same seed, different bytes"; they fail the workflow when configured to.
REPRODUCIBILITY = ("initial_state", "replica")
# Within one record, the order in which a step computes its quantities (forward, backward, optimizer
# state, weights), so the first differing tensor reported is the earliest cause, not a consequence.
CAUSAL_ORDER = ("logits", "losses", "grads", "momentum", "variance", "embeddings")
LEGACY1_KEYS = ("embeddings", "n_dead")
LEGACY3_KEYS = ("embeddings", "dead_indices", "n_dead", "n_runs", "base_seed")


class SanityError(RecordingError):
    """An input the checks cannot read; the message names the file and the key. A RecordingError, so the
    scripts' logging turns it into one line."""


class ReproducibilityError(RuntimeError):
    """A reproducibility check failed; the message names the files, the first differing tensor and step."""


# ---------------------------------------------------------------------------------------------------------
# The replica


def train_replica(config: dict, run, token_ids: torch.Tensor, masks: dict, out_path, *, warmup_seed: int,
                  token_ids_sha256: str = "") -> dict:
    """Train `warmup_seed` (discarded), then `run` into `out_path`, in this one process: anything that
    leaks from one run into the next (RNG state, caches, allocator) makes the replica differ from the run's
    own job. The warm-up goes next to the output, not to /tmp, which may be small on a cluster node."""
    # Imported here: the checks themselves only read files and need neither transformers nor a model.
    from .training import Run, train_run

    if warmup_seed == run.seed:
        raise ConfigError(f"config key 'sanity.replica_warmup_seed': {warmup_seed} is the replica's own seed")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".warmup-") as scratch:
        train_run(config, Run(run.tying, warmup_seed), token_ids, masks, Path(scratch) / "warmup.safetensors",
                  token_ids_sha256=token_ids_sha256)
    return train_run(config, run, token_ids, masks, out_path, token_ids_sha256=token_ids_sha256)


# ---------------------------------------------------------------------------------------------------------
# Lazy views of the recordings, whatever their layout


def display(path, root=".") -> str:
    """A path as it may appear in an output: relative to the workflow root, never a machine path."""
    path, root = Path(path), Path(root).resolve()
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name


@dataclass(frozen=True)
class Series:
    """One embedding matrix of one run over its records, read one record at a time."""

    label: str
    source: Recording
    key: str
    run: int | None  # index along a leading runs dimension (the 1.20c layout); None otherwise
    steps: tuple[int, ...]
    row_ids: torch.Tensor  # vocabulary ids of the stored rows
    init_scale: float | None

    def record(self, index: int) -> torch.Tensor:
        return self.source.record(self.key, index if self.run is None else (self.run, index))

    def at_step(self, step: int) -> torch.Tensor:
        return self.record(self.steps.index(step))

    def positions(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Where `ids` sit among the stored rows; None if any of them was not stored."""
        if ids.numel() == 0:
            return ids.new_zeros(0)
        order = torch.argsort(self.row_ids)
        stored = self.row_ids[order]
        found = torch.searchsorted(stored, ids).clamp(max=stored.numel() - 1)
        if not bool((stored[found] == ids).all()):
            return None
        return order[found]


def open_recording(path, root=".") -> Recording:
    try:
        return Recording(path)
    except RecordingError as error:
        raise SanityError(str(error).replace(str(path), display(path, root), 1)) from None


def run_series(recording: Recording, label: str) -> list[Series]:
    keys = ["embeddings"] if recording.tied else ["embeddings_E", "embeddings_W"]
    rows = recording.tensor("recorded_rows")
    steps = tuple(recording.steps())
    return [Series(f"{label} {key}", recording, key, None, steps, rows, recording.scalar("init_scale")) for key in keys]


@dataclass
class Legacy:
    """A notebook file: 1.20a (`embeddings` [T, V, D], `n_dead`) or 1.20c (`embeddings` [R, T, n_dead, D],
    `dead_indices`, `n_dead`, `n_runs`, `base_seed`)."""

    label: str
    recording: Recording
    layout: str  # "1.20a" or "1.20c"
    shape: list[int]

    @property
    def n_records(self) -> int:
        return self.shape[0] if self.layout == "1.20a" else self.shape[1]

    def scalar(self, name: str):
        return self.recording.scalar(name)

    def series(self, run: int | None = None, n_records: int | None = None) -> Series:
        """The embeddings of the file (1.20a) or of run `run` (1.20c); the notebooks recorded every step, so
        record i is step i. `n_records` keeps only the first records (1.22e trimmed 1.20c that way)."""
        steps = tuple(range(n_records or self.n_records))
        init_scale = self.scalar("init_scale") if "init_scale" in self.recording.keys else None
        if self.layout == "1.20a":
            return Series(self.label, self.recording, "embeddings", None, steps, torch.arange(self.shape[1]), init_scale)
        seed = self.scalar("base_seed") + run
        return Series(f"{self.label} run {run} (seed {seed})", self.recording, "embeddings", run, steps,
                      self.recording.tensor("dead_indices").to(torch.int64), init_scale)


def open_legacy(path, layout: str, root=".") -> Legacy:
    """Open a notebook file and insist on its layout; a wrong file is a one-line error naming the key."""
    label = display(path, root)
    recording = open_recording(path, root)
    required, dims = (LEGACY1_KEYS, 3) if layout == "1.20a" else (LEGACY3_KEYS, 4)
    for key in required:
        if key not in recording.keys:
            raise SanityError(f"{label}: not the {layout} layout, no tensor '{key}'")
    shape = recording.shape("embeddings")
    if len(shape) != dims:
        raise SanityError(f"{label}: not the {layout} layout, 'embeddings' has shape {shape} ({dims} dimensions expected)")
    legacy = Legacy(label, recording, layout, shape)
    if layout == "1.20c" and legacy.scalar("n_runs") != shape[0]:
        raise SanityError(f"{label}: 'n_runs' is {legacy.scalar('n_runs')} but 'embeddings' holds {shape[0]} runs")
    return legacy


def load_dead_indices(path, root=".") -> torch.Tensor:
    recording = open_recording(path, root)
    if "dead_indices" not in recording.keys:
        raise SanityError(f"{display(path, root)}: no tensor 'dead_indices' (not a live/dead mask file)")
    return recording.tensor("dead_indices").to(torch.int64)


# ---------------------------------------------------------------------------------------------------------
# Numbers


def expected_radius(init_scale: float, dim: int, n_rows: int | None = None) -> dict:
    """The mean distance of N(0, init_scale^2 I_D) rows from the origin (a scaled chi mean,
    init_scale * sqrt(2) * Gamma((D+1)/2) / Gamma(D/2), about init_scale * sqrt(D - 1/2)), and from the
    sample centroid of n_rows rows (each centred row has variance scaled by 1 - 1/n_rows)."""
    chi = math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
    mean = init_scale * chi
    shrink = math.sqrt(1 - 1 / n_rows) if n_rows and n_rows > 1 else 1.0
    return {"expected": mean, "expected_centred": mean * shrink, "row_sd": init_scale * math.sqrt(max(dim - chi**2, 0.0)) * shrink}


def mean_radius(cloud: torch.Tensor) -> float:
    cloud = cloud.to(torch.float32)
    return torch.linalg.vector_norm(cloud - cloud.mean(dim=0), dim=1).mean().item()


def difference(a: torch.Tensor, b: torch.Tensor) -> dict:
    delta = a.to(torch.float32) - b.to(torch.float32)
    return {"frobenius": torch.linalg.vector_norm(delta).item(), "max_abs": delta.abs().max().item() if delta.numel() else 0.0}


def _bytes_of(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().reshape(-1).view(torch.uint8)


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN equals NaN: record 0 holds a NaN loss)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bytes_of(a), _bytes_of(b))


def _differing_elements(a: torch.Tensor, b: torch.Tensor) -> int:
    width = a.element_size()
    return int((_bytes_of(a).reshape(-1, width) != _bytes_of(b).reshape(-1, width)).any(dim=1).sum())


# ---------------------------------------------------------------------------------------------------------
# The checks. Each returns the entry of the report: "passed" (true, false, or null when there was nothing
# to check), a one-line "summary", and its numbers in "rows".


def _entry(name: str, passed, summary: str, rows: list[dict], **extra) -> dict:
    number, title = CHECKS[name]
    return {"number": number, "title": title, "reproducibility": name in REPRODUCIBILITY, "passed": passed,
            "summary": summary, **extra, "rows": rows}


def _all(values) -> bool | None:
    values = [v for v in values if v is not None]
    return all(values) if values else None


def check_dead_indices(recordings: dict[str, Recording], canonical: torch.Tensor) -> dict:
    rows = []
    for label, recording in recordings.items():
        dead = recording.tensor("dead_indices").to(torch.int64)
        recorded = recording.tensor("recorded_rows")
        rows.append({"file": label, "n_dead": recording.scalar("n_dead"), "dead_indices": dead.numel(),
                     "equal_canonical": bool(torch.equal(dead, canonical)),
                     "dead_rows_recorded": bool(torch.isin(canonical, recorded).all())})
    agree = [r["equal_canonical"] and r["dead_rows_recorded"] and r["n_dead"] == canonical.numel() for r in rows]
    passed = _all(agree)
    bad = [r["file"] for r, ok in zip(rows, agree) if not ok]
    summary = (f"all {len(rows)} files use the {canonical.numel()} canonical dead indices and record their rows" if not bad
               else f"{len(bad)} of {len(rows)} files differ from the {canonical.numel()} canonical dead indices: {', '.join(bad)}")
    return _entry("dead_indices", passed, summary, rows, canonical_n_dead=canonical.numel())


def check_record_counts(recordings: dict[str, Recording], steps: int, record_every: int) -> dict:
    expected = list(range(0, steps + 1, record_every))
    rows = []
    for label, recording in recordings.items():
        recorded = recording.steps()
        rows.append({"file": label, "records": len(recorded), "expected": len(expected), "steps_match": recorded == expected})
    bad = [r["file"] for r in rows if not r["steps_match"]]
    summary = (f"every file holds {len(expected)} records, steps 0..{steps} every {record_every}" if not bad
               else f"{', '.join(bad)}: records do not match steps 0..{steps} every {record_every} ({len(expected)} records)")
    return _entry("record_counts", _all(r["steps_match"] for r in rows), summary, rows)


def check_initial_state(pairs: dict[str, tuple[Recording, Recording]], labels: dict[str, tuple[str, str]]) -> dict:
    """Reference vs replica at t=0: the full-state digest (every parameter, not only E and W) and record 0 of
    every recorded matrix. Equal E/W with unequal digests is 1.22e's blind spot: the rest of the model differs."""
    rows, failures = [], []
    for name, (reference, replica) in pairs.items():
        digest_a, digest_b = reference.metadata.get("state_sha256_initial"), replica.metadata.get("state_sha256_initial")
        first = None
        for key in _record_keys(reference):
            if key in replica.keys and not same_bytes(reference.record(key, 0), replica.record(key, 0)):
                first = key
                break
        digests_equal = digest_a == digest_b and digest_a is not None
        rows.append({"pair": name, "reference": labels[name][0], "replica": labels[name][1], "state_digest_equal": digests_equal,
                     "recorded_t0_equal": first is None, "first_differing_tensor": first})
        if not digests_equal or first is not None:
            where = f"tensor '{first}'" if first else "the model state outside the recorded matrices (state_sha256_initial)"
            failures.append(f"sanity check 3 ({name}): {labels[name][0]} and {labels[name][1]} differ at t=0: first in {where} at step 0")
    summary = ("no reference/replica pair" if not rows else failures[0] if failures
               else "t=0 identical for the whole model (full-state digest and every recorded matrix)")
    return _entry("initial_state", _all(r["state_digest_equal"] and r["recorded_t0_equal"] for r in rows), summary, rows,
                  failures=failures)


def check_step_differences(pairs: dict[str, tuple[Series, Series]], compare_steps, dead: torch.Tensor | None) -> dict:
    """Frobenius norm and largest element of reference - twin at every compare step both recorded: over the
    dead rows (what 1.22e compared) and over every row the two share."""
    rows = []
    for name, (a, b) in pairs.items():
        dead_a = a.positions(dead) if dead is not None else None
        dead_b = b.positions(dead) if dead is not None else None
        shared = torch.equal(a.row_ids, b.row_ids)
        for step in [s for s in compare_steps if s in a.steps and s in b.steps]:
            ra, rb = a.at_step(step), b.at_step(step)
            row = {"pair": name, "step": step}
            if dead_a is not None and dead_b is not None:
                row.update({f"dead_{k}": v for k, v in difference(ra[dead_a], rb[dead_b]).items()})
            if shared:
                row.update({f"all_{k}": v for k, v in difference(ra, rb).items()})
            rows.append(row)
    norms = [v for r in rows for k, v in r.items() if k.endswith("frobenius")]
    passed = (max(norms) == 0.0) if norms else None
    if not rows:
        summary = "none of the compare steps was recorded by both runs"
    elif passed:
        summary = f"zero at every compared step ({', '.join(str(s) for s in sorted({r['step'] for r in rows}))})"
    else:
        first = next(r for r in rows if any(v > 0 for k, v in r.items() if k.endswith("frobenius")))
        summary = f"apart from step {first['step']} on ({first['pair']}); largest Frobenius difference {max(norms):.6g}"
    return _entry("step_differences", passed, summary, rows)


def check_sweep_distinct(series: dict[int, Series], dead: torch.Tensor | None, digests: dict[int, str] | None = None) -> dict:
    """Every pair of sweep runs at t=0: runs with different seeds must differ (1.22e feared one seed for all)."""
    seeds = sorted(series)
    first = {seed: series[seed].record(0) for seed in seeds}  # one [rows, D] record per run
    rows = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            row = {"seed_a": a, "seed_b": b}
            if torch.equal(series[a].row_ids, series[b].row_ids):
                row.update({f"all_{k}": v for k, v in difference(first[a], first[b]).items()})
            pa, pb = (series[a].positions(dead), series[b].positions(dead)) if dead is not None else (None, None)
            if pa is not None and pb is not None:
                row.update({f"dead_{k}": v for k, v in difference(first[a][pa], first[b][pb]).items()})
            if digests:
                row["state_digests_differ"] = digests[a] != digests[b]
            rows.append(row)
    def differ(row):
        norms = [v for k, v in row.items() if k.endswith("frobenius")]
        return bool(norms) and min(norms) > 0 and row.get("state_digests_differ", True)
    passed = _all(differ(r) for r in rows)
    same = [f"{r['seed_a']}/{r['seed_b']}" for r in rows if not differ(r)]
    summary = ("fewer than two sweep runs" if not rows else f"all {len(rows)} pair(s) of {len(seeds)} runs differ at t=0" if passed
               else f"identical at t=0: seeds {', '.join(same)}")
    return _entry("sweep_distinct", passed, summary, rows)


def check_radius(series: list[Series], dead: torch.Tensor | None, default_init_scale: float) -> dict:
    """Mean distance of the dead rows from their centroid at t=0 and at the last step; the t=0 value must lie
    within 5 standard errors (plus 0.5 % for bf16 rounding) of its expectation."""
    rows = []
    for s in series:
        positions = s.positions(dead) if dead is not None else None
        if positions is None or positions.numel() < 2:
            rows.append({"run": s.label, "n_dead": 0 if positions is None else positions.numel(), "within": None})
            continue
        last = s.steps[-1]
        initial = s.record(0)
        r0, r_last = mean_radius(initial[positions]), mean_radius(s.at_step(last)[positions])
        init_scale = s.init_scale if s.init_scale is not None else default_init_scale
        n, dim = positions.numel(), initial.shape[-1]
        expected = expected_radius(init_scale, dim, n)
        tolerance = 5 * expected["row_sd"] / math.sqrt(n) + 0.005 * expected["expected_centred"]
        rows.append({"run": s.label, "n_dead": n, "init_scale": init_scale, "D": dim, "radius_t0": r0,
                     "expected": expected["expected"], "expected_centred": expected["expected_centred"],
                     "tolerance": tolerance, "within": abs(r0 - expected["expected_centred"]) <= tolerance,
                     "last_step": last, "radius_last": r_last, "ratio": r_last / r0 if r0 else None})
    passed = _all(r["within"] for r in rows)
    checked = [r for r in rows if r["within"] is not None]
    if not checked:
        summary = "no run with two or more dead rows"
    else:
        r = checked[0]
        summary = (f"{r['run']}: t=0 {r['radius_t0']:.6f} (expected {r['expected']:.6f}, {r['expected_centred']:.6f} "
                   f"about the sample centroid), step {r['last_step']} {r['radius_last']:.6f}, ratio {_cell(r['ratio'])}")
        outside = [r["run"] for r in checked if not r["within"]]
        if outside:
            summary = f"t=0 radius off its expectation: {', '.join(outside)}; " + summary
    return _entry("radius", passed, summary, rows)


def _record_keys(recording: Recording) -> list[str]:
    """The per-record tensors of a recording, in causal order within a step."""
    keys = []
    for quantity in CAUSAL_ORDER:
        keys += [k for k in (quantity, f"{quantity}_E", f"{quantity}_W") if k in recording.keys]
    return keys


def first_difference(a: Recording, b: Recording) -> dict | None:
    """The first tensor and step at which two recordings differ bitwise, or None. Static tensors first, then
    step by step (the initial full-state digest, the record's tensors in causal order, the final digest)."""
    if a.keys != b.keys:
        missing = sorted(a.keys ^ b.keys)[0]
        return {"tensor": missing, "step": None, "detail": "present in only one file"}
    per_record = _record_keys(a)
    for key in sorted(a.keys - set(per_record)):
        x, y = a.tensor(key), b.tensor(key)
        if not same_bytes(x, y):
            return {"tensor": key, "step": None, "detail": _detail(x, y)}
    for key in per_record:
        if a.shape(key) != b.shape(key):
            return {"tensor": key, "step": None, "detail": f"shapes {a.shape(key)} and {b.shape(key)}"}
    steps = a.steps()
    for index, step in enumerate(steps):
        if index == 0 and a.metadata.get("state_sha256_initial") != b.metadata.get("state_sha256_initial"):
            return {"tensor": "model state (state_sha256_initial)", "step": 0, "record": 0, "detail": "full-state digests differ"}
        for key in per_record:
            x, y = a.record(key, index), b.record(key, index)
            if not same_bytes(x, y):
                return {"tensor": key, "step": step, "record": index, "detail": _detail(x, y)}
    if a.metadata.get("state_sha256_final") != b.metadata.get("state_sha256_final"):
        return {"tensor": "model state (state_sha256_final)", "step": steps[-1] if steps else None,
                "record": len(steps) - 1, "detail": "full-state digests differ"}
    return None


def _detail(x: torch.Tensor, y: torch.Tensor) -> str:
    if x.dtype != y.dtype or x.shape != y.shape:
        return f"{x.dtype} {list(x.shape)} vs {y.dtype} {list(y.shape)}"
    n = _differing_elements(x, y)
    return f"{n} of {x.numel()} elements differ, max |difference| {difference(x, y)['max_abs']:.6g}"


def check_replicas(pairs: dict[str, tuple[Recording, Recording]], labels: dict[str, tuple[str, str]]) -> dict:
    rows, failures = [], []
    for name, (original, replica) in pairs.items():
        found = first_difference(original, replica)
        metadata = [k for k in ("seed", "data_seed", "config", "token_ids_sha256", "device")
                    if original.metadata.get(k) != replica.metadata.get(k)]
        rows.append({"pair": name, "original": labels[name][0], "replica": labels[name][1], "identical": found is None,
                     "first_tensor": found and found["tensor"], "first_step": found and found["step"],
                     "detail": found and found["detail"], "metadata_differs": ", ".join(metadata) or None})
        if found:
            step = "in its static tensors" if found["step"] is None else f"at step {found['step']}"
            failures.append(f"sanity check 7 ({name}): {labels[name][0]} and {labels[name][1]} first differ in tensor "
                            f"'{found['tensor']}' {step}: {found['detail']}"
                            + (f" (metadata differs: {', '.join(metadata)})" if metadata else ""))
    summary = (f"{len(rows)} replica(s) bitwise identical to their originals" if rows and not failures
               else failures[0] if failures else "no replica")
    return _entry("replica", _all(r["identical"] for r in rows), summary, rows, failures=failures)


def check_manifest(paths, root=".") -> dict:
    rows = sorted(({"path": display(p, root), "bytes": Path(p).stat().st_size, "sha256": sha256_file(p)} for p in paths),
                  key=lambda r: r["path"])
    return _entry("manifest", True, f"{len(rows)} run files, {sum(r['bytes'] for r in rows)} bytes", rows)


# ---------------------------------------------------------------------------------------------------------
# The two subjects: this workflow's runs and the notebooks' files


def workflow_checks(config: dict, runs: dict, replicas: dict, canonical: torch.Tensor, root=".") -> dict:
    """`runs` and `replicas` map (tying, seed) to a recording path."""
    reference_seed = config["runs"]["reference_seed"]
    opened = {key: open_recording(path, root) for key, path in runs.items()}
    replica_opened = {key: open_recording(path, root) for key, path in replicas.items()}
    labels = {**{("run",) + key: display(p, root) for key, p in runs.items()},
              **{("replica",) + key: display(p, root) for key, p in replicas.items()}}
    everything = {labels[("run",) + k]: r for k, r in opened.items()} | {labels[("replica",) + k]: r for k, r in replica_opened.items()}

    pair_names = {key: f"{key[0]} seed {key[1]}" for key in replicas if key in runs}
    pairs = {pair_names[k]: (opened[k], replica_opened[k]) for k in pair_names}
    pair_labels = {pair_names[k]: (labels[("run",) + k], labels[("replica",) + k]) for k in pair_names}
    series_pairs = {}
    for k, name in pair_names.items():
        for a, b in zip(run_series(opened[k], labels[("run",) + k]), run_series(replica_opened[k], labels[("replica",) + k])):
            series_pairs[f"{name} {a.key}"] = (a, b)

    sweep = {seed: run_series(r, labels[("run", tying, seed)])[0] for (tying, seed), r in opened.items() if tying == "tied"}
    digests = {seed: opened[("tied", seed)].metadata.get("state_sha256_initial") for seed in sweep}
    training = config["training"]
    return {
        "dead_indices": check_dead_indices(everything, canonical),
        "record_counts": check_record_counts(everything, training["steps"], config["recording"]["record_every"]),
        "initial_state": check_initial_state(pairs, pair_labels),
        "step_differences": check_step_differences(series_pairs, config["sanity"]["compare_steps"], canonical),
        "sweep_distinct": check_sweep_distinct(sweep, canonical, digests),
        "radius": check_radius([s for key in sorted(opened) for s in run_series(opened[key], labels[("run",) + key])],
                               canonical, config["model"]["init_scale"]),
        "replica": check_replicas(pairs, pair_labels),
        "manifest": check_manifest(list(runs.values()) + list(replicas.values()), root),
        "_context": {"reference": display(runs.get(("tied", reference_seed), ""), root), "reference_seed": reference_seed},
    }


def legacy_checks(config: dict, flannel1, flannel3, canonical: torch.Tensor, root=".") -> dict:
    """The checks on the notebooks' files. Their layouts hold no full-state digest and no replica, so check 3
    compares only the dead embedding rows at t=0 (all that 1.22e could see) and check 7 does not apply."""
    f1 = open_legacy(flannel1, "1.20a", root) if flannel1 else None
    f3 = open_legacy(flannel3, "1.20c", root) if flannel3 else None
    dead3 = f3.recording.tensor("dead_indices").to(torch.int64) if f3 else None
    reference_seed = config["runs"]["reference_seed"]
    entries = {}

    rows = []
    if f1:
        rows.append({"file": f1.label, "n_dead": f1.scalar("n_dead"), "dead_indices": None, "equal_canonical": None,
                     "n_dead_equal_canonical": f1.scalar("n_dead") == canonical.numel()})
    if f3:
        rows.append({"file": f3.label, "n_dead": f3.scalar("n_dead"), "dead_indices": dead3.numel(),
                     "equal_canonical": bool(torch.equal(dead3, canonical)),
                     "n_dead_equal_canonical": f3.scalar("n_dead") == canonical.numel() == f3.shape[2]})
    passed = _all(r["n_dead_equal_canonical"] and r["equal_canonical"] is not False for r in rows)
    entries["dead_indices"] = _entry(
        "dead_indices", passed,
        (f"legacy files agree with the {canonical.numel()} canonical dead indices" if passed
         else f"legacy files disagree with the {canonical.numel()} canonical dead indices")
        + ("; 1.20a stores no dead_indices, only n_dead is compared" if f1 else ""), rows, canonical_n_dead=canonical.numel())

    # Dead rows of the full 1.20a matrix: the 1.20c file's indices (as 1.22e took them), else the canonical.
    dead1 = dead3 if f3 else canonical
    if f1 and (dead1.numel() == 0 or int(dead1.max()) >= f1.shape[1]):
        dead1 = None
    n1 = f1.n_records if f1 else None
    n3 = f3.n_records if f3 else None
    rows = [r for r in ({"file": f1.label, "records": n1} if f1 else None, {"file": f3.label, "records": n3} if f3 else None) if r]
    if f1 and f3:
        counts_ok = n1 == n3
        extra = n3 - n1
        summary = (f"both hold {n1} records" if counts_ok else
                   f"{f3.label} holds {n3} records per run, {f1.label} {n1}: "
                   f"{abs(extra)} record{'s' if abs(extra) != 1 else ''} too {'many' if extra > 0 else 'few'}; "
                   f"the comparisons use the first {min(n1, n3)} (as 1.22e did)")
    else:
        counts_ok = None
        summary = f"{rows[0]['file']} holds {rows[0]['records']} records (no other legacy file to compare the count with)"
    entries["record_counts"] = _entry("record_counts", counts_ok, summary, rows)

    common = min(n1, n3) if f1 and f3 else None
    if f1 and f3:
        member = reference_seed - f3.scalar("base_seed")
        note = ""
        if not 0 <= member < f3.shape[0]:
            note = f"; seed {reference_seed} is not in the sweep, run 0 used"
            member = 0
        a, b = f1.series(n_records=common), f3.series(member, n_records=common)
        pa, pb = (a.positions(dead1) if dead1 is not None else None), b.positions(dead1 if dead1 is not None else canonical)
        if pa is None or pb is None:
            entries["initial_state"] = _entry("initial_state", None, "no dead indices usable in both files" + note, [], failures=[])
        else:
            t0_equal = same_bytes(a.record(0)[pa], b.record(0)[pb])
            t0 = difference(a.record(0)[pa], b.record(0)[pb])
            failures = [] if t0_equal else [f"sanity check 3 (legacy): {a.label} and {b.label} differ at t=0 in tensor 'embeddings' (dead rows) at step 0"]
            entries["initial_state"] = _entry(
                "initial_state", t0_equal,
                ("dead embedding rows identical at t=0" if t0_equal else failures[0])
                + "; the legacy layouts hold no full-state digest, so the rest of the model is unchecked" + note,
                [{"pair": f"{a.label} vs {b.label}", "scope": "dead embedding rows only", "recorded_t0_equal": t0_equal, **t0}],
                failures=failures)
        entries["step_differences"] = check_step_differences({f"{a.label} vs {b.label}": (a, b)}, config["sanity"]["compare_steps"],
                                                             dead1 if dead1 is not None else canonical)
    if f3:
        sweep = {f3.scalar("base_seed") + r: f3.series(r, n_records=common) for r in range(f3.shape[0])}
        entries["sweep_distinct"] = check_sweep_distinct(sweep, dead3)
    radius_series = ([f1.series(n_records=common)] if f1 and dead1 is not None else []) + (
        [f3.series(r, n_records=common) for r in range(f3.shape[0])] if f3 else [])
    if radius_series:
        dead_for = dead1 if dead1 is not None else canonical
        entries["radius"] = check_radius(radius_series, dead_for, config["model"]["init_scale"])
    entries["manifest"] = check_manifest([p for p in (flannel1, flannel3) if p], root)
    return entries


# ---------------------------------------------------------------------------------------------------------
# The report


def sanity_report(config: dict, *, runs: dict, replicas: dict, masks, legacy_flannel1=None, legacy_flannel3=None,
                  legacy_masks=None, root=".") -> dict:
    """Run every check and return the report (plain JSON types, relative paths, no timestamps)."""
    canonical = load_dead_indices(masks, root)
    checks = workflow_checks(config, runs, replicas, canonical, root)
    context = checks.pop("_context")
    report = {"reference": context["reference"], "reference_seed": context["reference_seed"],
              "replica_note": "each reference run is compared with its replica, retrained after seed "
                              f"{replica_warmup_seed(config)} in one process",
              "checks": checks}
    if legacy_flannel1 or legacy_flannel3:
        legacy_canonical = load_dead_indices(legacy_masks, root) if legacy_masks else canonical
        report["legacy"] = {"flannel1": legacy_flannel1 and display(legacy_flannel1, root),
                            "flannel3": legacy_flannel3 and display(legacy_flannel3, root),
                            "masks": display(legacy_masks or masks, root),
                            "checks": legacy_checks(config, legacy_flannel1, legacy_flannel3, legacy_canonical, root)}
    entries = list(checks.values()) + list(report.get("legacy", {}).get("checks", {}).values())
    failures = [f for e in entries if e["reproducibility"] for f in e.get("failures", [])]
    failures += [f"sanity check {e['number']}: {e['summary']}" for e in entries
                 if e["reproducibility"] and e["passed"] is False and not e.get("failures")]
    report["passed"] = all(e["passed"] is not False for e in entries)
    report["reproducibility"] = {"passed": not failures, "failures": failures}
    return report


def write_report(report: dict, json_path, md_path, manifest_path) -> None:
    write_json(json_path, report)
    write_text(md_path, markdown(report))
    rows = report["checks"]["manifest"]["rows"] + report.get("legacy", {}).get("checks", {}).get("manifest", {}).get("rows", [])
    lines = ["path\tbytes\tsha256"] + [f"{r['path']}\t{r['bytes']}\t{r['sha256']}" for r in sorted(rows, key=lambda r: r["path"])]
    write_text(manifest_path, "\n".join(lines) + "\n")


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def _mark(passed) -> str:
    return {True: "✓", False: "✗", None: "–"}[passed]


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return (["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows])


def markdown(report: dict) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = ["# Sanity checks: Flannel 1 vs Flannel 3", "",
             f"**{verdict}**; reproducibility {'passed' if report['reproducibility']['passed'] else 'FAILED'}.", "",
             f"Reference (Flannel 1): `{report['reference']}`, seed {report['reference_seed']}; "
             f"the sweep (Flannel 3): the tied runs. {report['replica_note'].capitalize()}.", ""]
    for failure in report["reproducibility"]["failures"]:
        lines += [f"- {failure}"]
    sections = [("", report["checks"])]
    if "legacy" in report:
        legacy = report["legacy"]
        sections.append((f"Legacy files: 1.20a `{legacy['flannel1']}`, 1.20c `{legacy['flannel3']}`, masks `{legacy['masks']}`",
                         legacy["checks"]))
    for heading, checks in sections:
        if heading:
            lines += ["", f"## {heading}"]
        for entry in checks.values():
            kind = " (reproducibility)" if entry["reproducibility"] else ""
            lines += ["", f"### {_mark(entry['passed'])} {entry['number']}. {entry['title']}{kind}", "", entry["summary"], ""]
            lines += _table(entry["rows"])
    return "\n".join(lines).rstrip() + "\n"


def enforce(report: dict, fail: bool) -> str:
    """The verdict line; raises ReproducibilityError (naming the first differing tensor and step) when a
    reproducibility check failed and `fail` is set."""
    failures = report["reproducibility"]["failures"]
    if failures and fail:
        raise ReproducibilityError(failures[0] + (f" (and {len(failures) - 1} more, see results/sanity/report.md)" if len(failures) > 1 else ""))
    if failures:
        return f"reproducibility FAILED (not enforced: sanity.fail_on_reproducibility is false): {failures[0]}"
    return "passed" if report["passed"] else "reproducibility passed; other checks failed, see results/sanity/report.md"

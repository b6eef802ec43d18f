"""The sanity checks of notebook 1.22e, each implemented once and run on both subjects: this workflow's runs
(flannel.sanity.report) and the notebooks' own files (flannel.sanity.legacy).

A check takes lazy views of recordings (`Series`: one embedding matrix of one run, read one record at a
time, so memory does not grow with the length or the number of the recordings) and returns its entry of
the report: "passed" (true, false, or null when there was nothing to check), a one-line "summary", and its
numbers in "rows".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..analysis import adam
from ..analysis.metrics import cloud
from ..outputs import display
from ..recording import Recording, tensor_digests
from .series import Series, difference, differing_elements, expected_radius, same_bytes, shared_rows

CHECKS = {  # name: (number, title)
    "dead_indices": (1, "Dead indices equal the canonical masks"),
    "record_counts": (2, "Every run holds steps/record_every + 1 records"),
    "initial_state": (3, "t=0 identical between the reference and its twin, whole model"),
    "step_differences": (4, "Frobenius differences at the compare steps"),
    "sweep_distinct": (5, "The sweep's runs differ at t=0 exactly where their init seeds differ"),
    "radius": (6, "Mean radius of the dead cloud from its centroid"),
    "replica": (7, "Replica vs original, every tensor bitwise"),
    "manifest": (8, "Manifest of the run files"),
    "adam_replay": (9, "Every recorded step rebuilt bitwise from the recording (torch's AdamW)"),
}
# The checks whose failure means "same seed, different bytes"; they fail the workflow when configured to.
REPRODUCIBILITY = ("initial_state", "replica", "adam_replay")
# Within one record, the order in which a step computes its quantities (forward, backward, optimizer
# state, weights), so the first differing tensor reported is the earliest cause, not a consequence.
CAUSAL_ORDER = ("h_mean", "logits", "losses", "grads", "grad_norms", "momentum", "variance", "embeddings")
# Header entries that decide a run's bytes besides its config: a difference there explains a difference below.
PROVENANCE = ("numerics", "hardware", "device", "versions")


# ---- the checks ------------------------------------------------------------------------------------------


def _entry(name: str, passed, summary: str, rows: list[dict], **extra) -> dict:
    number, title = CHECKS[name]
    return {"number": number, "title": title, "reproducibility": name in REPRODUCIBILITY, "passed": passed,
            "summary": summary, **extra, "rows": rows}


def _all(values) -> bool | None:
    values = [v for v in values if v is not None]
    return all(values) if values else None


def check_dead_indices(files: list[Series], canonical: torch.Tensor) -> dict:
    """One series per file: the dead ids it names (where its layout stores them), its n_dead, and whether
    every canonical dead row was recorded."""
    rows = []
    for s in files:
        named = s.dead_indices
        rows.append({"file": s.file, "n_dead": s.n_dead, "dead_indices": None if named is None else named.numel(),
                     "equal_canonical": None if named is None else bool(torch.equal(named, canonical)),
                     "dead_rows_recorded": bool(torch.isin(canonical, s.row_ids).all())})
    agree = [r["n_dead"] == canonical.numel() and r["equal_canonical"] is not False and r["dead_rows_recorded"] for r in rows]
    bad = [r["file"] for r, ok in zip(rows, agree) if not ok]
    unnamed = [r["file"] for r in rows if r["equal_canonical"] is None]
    summary = (f"all {len(rows)} files agree with the {canonical.numel()} canonical dead indices and record their rows" if not bad
               else f"{len(bad)} of {len(rows)} files differ from the {canonical.numel()} canonical dead indices: {', '.join(bad)}")
    if unnamed:
        summary += f"; {', '.join(unnamed)} store(s) no dead_indices, only n_dead is compared"
    return _entry("dead_indices", _all(agree), summary, rows, canonical_n_dead=canonical.numel())


def check_record_counts(files: list[Series], expected: list[int] | None, basis: str, note: str = "") -> dict:
    """Every file's recorded steps against `expected` (None: nothing to compare with)."""
    rows = [{"file": s.file, "records": len(s.steps), "expected": None if expected is None else len(expected),
             "steps_match": None if expected is None else list(s.steps) == expected} for s in files]
    bad = [r for r in rows if r["steps_match"] is False]
    if expected is None:
        summary = "; ".join(f"{r['file']} holds {r['records']} records" for r in rows) + f" ({basis})"
    elif not bad:
        summary = f"every file holds {len(expected)} records ({basis})"
    else:
        extra = bad[0]["records"] - len(expected)
        summary = (f"{bad[0]['file']} holds {bad[0]['records']} records, {abs(extra)} record{'s' if abs(extra) != 1 else ''} "
                   f"too {'many' if extra > 0 else 'few'} against {len(expected)} ({basis})")
    return _entry("record_counts", _all(r["steps_match"] for r in rows), summary + note, rows)


def check_initial_state(pairs: dict[str, tuple[list[Series], list[Series]]], dead: torch.Tensor | None) -> dict:
    """Reference vs twin at t=0: the full-state digest (every parameter, not only E and W) where both files
    hold one, and record 0 of every recorded matrix. Equal E/W with unequal digests is 1.22e's blind spot:
    the rest of the model differs."""
    rows, failures = [], []
    for name, (a_side, b_side) in pairs.items():
        a0, b0 = a_side[0], b_side[0]
        digests = (a0.state_sha256_initial, b0.state_sha256_initial)
        digests_equal = None if None in digests else digests[0] == digests[1]
        first, scope, worst = None, None, 0.0
        for a, b in zip(a_side, b_side):
            scope, pa, pb = shared_rows(a, b, dead)
            if scope is None:
                continue
            x, y = a.record(0)[pa], b.record(0)[pb]
            worst = max(worst, difference(x, y)["max_abs"])
            if first is None and not same_bytes(x, y):
                first = a.key
        rows.append({"pair": name, "reference": a0.file, "twin": b0.file, "scope": scope, "state_digest_equal": digests_equal,
                     "recorded_t0_equal": None if scope is None else first is None, "first_differing_tensor": first,
                     "max_abs": worst})
        if digests_equal is False or first is not None:
            where = f"tensor '{first}'" if first else "the model state outside the recorded matrices (state_sha256_initial)"
            failures.append(f"sanity check 3 ({name}): {a0.file} and {b0.file} differ at t=0: first in {where} at step 0")
    passed = _all(r["state_digest_equal"] is not False and r["recorded_t0_equal"] for r in rows if r["scope"])
    if not rows:
        summary = "no reference/twin pair"
    elif failures:
        summary = failures[0]
    elif all(r["state_digest_equal"] for r in rows):
        summary = "t=0 identical for the whole model (full-state digest and every recorded matrix)"
    else:
        summary = (f"recorded matrices identical at t=0 ({rows[0]['scope']}); the layout holds no full-state digest, "
                   "so the rest of the model is unchecked")
    return _entry("initial_state", passed, summary, rows, failures=failures)


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


def check_sweep_distinct(series: dict[int, Series], dead: torch.Tensor | None, init_seed: int | None = None) -> dict:
    """Every pair of sweep runs at t=0: runs with different init seeds must differ (1.22e feared one seed for
    all), and runs that share one (training.init_seed) must not. All rows count where both store the same rows,
    and the full-state digests where both hold one. `init_seed`: the config's (None: each run's own seed);
    the config decides which runs share an initialisation, never the files' own headers."""
    seeds = sorted(series)
    first = {seed: series[seed].record(0) for seed in seeds}  # one [rows, D] record per run
    rows = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            sa, sb = series[a], series[b]
            row = {"seed_a": a, "seed_b": b, "same_init_seed": init_seed is not None}
            if torch.equal(sa.row_ids, sb.row_ids):
                row.update({f"all_{k}": v for k, v in difference(first[a], first[b]).items()})
            pa, pb = (sa.positions(dead), sb.positions(dead)) if dead is not None else (None, None)
            if pa is not None and pb is not None and pa.numel():
                row.update({f"dead_{k}": v for k, v in difference(first[a][pa], first[b][pb]).items()})
            if sa.state_sha256_initial and sb.state_sha256_initial:
                row["state_digests_differ"] = sa.state_sha256_initial != sb.state_sha256_initial
            rows.append(row)
    passed = _all(_differ(r) != r["same_init_seed"] for r in rows)
    wrong = [f"different at t=0: seeds {r['seed_a']}/{r['seed_b']}, which share an init seed" if r["same_init_seed"]
             else f"identical at t=0: seeds {r['seed_a']}/{r['seed_b']}, whose init seeds differ"
             for r in rows if _differ(r) == r["same_init_seed"]]
    shared = sum(r["same_init_seed"] for r in rows)
    summary = ("fewer than two sweep runs" if not rows else "; ".join(wrong) if not passed
               else f"all {len(rows)} pair(s) of {len(seeds)} runs differ at t=0" if not shared
               else f"{len(rows) - shared} pair(s) differ at t=0 and {shared} sharing an init seed are identical")
    return _entry("sweep_distinct", passed, summary, rows)


def _differ(row: dict) -> bool:
    """Two runs differ when the rows they share differ (any group) or their full-state digests do."""
    norms = [v for k, v in row.items() if k.endswith("frobenius")]
    return any(v > 0 for v in norms) or row.get("state_digests_differ", False)


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
        r0 = cloud(initial[positions])["radius_centroid_mean"]
        r_last = cloud(s.at_step(last)[positions])["radius_centroid_mean"]
        init_scale = s.init_scale if s.init_scale is not None else default_init_scale
        n, dim = positions.numel(), initial.shape[-1]
        expected = expected_radius(init_scale, dim, n)
        tolerance = 5 * expected["row_sd"] / math.sqrt(n) + 0.005 * expected["expected_centred"]
        rows.append({"run": s.label, "n_dead": n, "init_scale": init_scale, "D": dim, "radius_t0": r0,
                     "expected": expected["expected"], "expected_centred": expected["expected_centred"],
                     "tolerance": tolerance, "within": abs(r0 - expected["expected_centred"]) <= tolerance,
                     "last_step": last, "radius_last": r_last, "ratio": r_last / r0 if r0 else None})
    checked = [r for r in rows if r["within"] is not None]
    if not checked:
        summary = "no run with two or more dead rows"
    else:
        r = checked[0]
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.6g}"
        summary = (f"{r['run']}: t=0 {r['radius_t0']:.6f} (expected {r['expected']:.6f}, {r['expected_centred']:.6f} "
                   f"about the sample centroid), step {r['last_step']} {r['radius_last']:.6f}, ratio {ratio}")
        outside = [r["run"] for r in checked if not r["within"]]
        if outside:
            summary = f"t=0 radius off its expectation: {', '.join(outside)}; " + summary
    return _entry("radius", _all(r["within"] for r in rows), summary, rows)


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
    n = differing_elements(x, y)
    return f"{n} of {x.numel()} elements differ, max |difference| {difference(x, y)['max_abs']:.6g}"


def provenance_differences(a: Recording, b: Recording) -> list[str]:
    """The header entries that decide the bytes (numerics settings, hardware, device, versions) and differ,
    a difference of CPU vendor first (named with both vendors): outside the portable mode, MKL runs other
    code on Intel and AMD, so that is the likeliest cause on a mixed cluster."""
    found = [key for key in PROVENANCE if a.metadata.get(key) != b.metadata.get(key)]
    vendors = [_cpu_vendor(r) for r in (a, b)]
    if vendors[0] != vendors[1]:
        found.insert(0, f"CPU vendors ({vendors[0]} vs {vendors[1]})")
    return found


def _cpu_vendor(recording: Recording) -> str | None:
    try:
        return json.loads(recording.metadata.get("hardware", "{}")).get("cpu_vendor")
    except ValueError:
        return None


def check_replicas(pairs: dict[str, tuple[Recording, Recording]], labels: dict[str, tuple[str, str]]) -> dict:
    """Each original against its replica, bitwise. When they differ, the failure says first whether the two
    headers name different numerics settings or hardware: the likeliest cause on a mixed cluster."""
    rows, failures = [], []
    for name, (original, replica) in pairs.items():
        found = first_difference(original, replica)
        metadata = [k for k in ("seed", "data_seed", "config", "token_ids_sha256") if original.metadata.get(k) != replica.metadata.get(k)]
        provenance = provenance_differences(original, replica)
        rows.append({"pair": name, "original": labels[name][0], "replica": labels[name][1], "identical": found is None,
                     "first_tensor": found and found["tensor"], "first_step": found and found["step"],
                     "detail": found and found["detail"], "provenance_differs": ", ".join(provenance) or None,
                     "metadata_differs": ", ".join(metadata) or None})
        if found:
            step = "in its static tensors" if found["step"] is None else f"at step {found['step']}"
            cause = (f"their headers name different {', '.join(provenance)}; " if provenance
                     else "their headers name the same numerics settings and hardware; ")
            failures.append(f"sanity check 7 ({name}): {cause}{labels[name][0]} and {labels[name][1]} first differ in tensor "
                            f"'{found['tensor']}' {step}: {found['detail']}"
                            + (f" (metadata differs: {', '.join(metadata)})" if metadata else ""))
    summary = (f"{len(rows)} replica(s) bitwise identical to their originals" if rows and not failures
               else failures[0] if failures else "no replica")
    return _entry("replica", _all(r["identical"] for r in rows), summary, rows, failures=failures)


def check_manifest(paths, root=".") -> dict:
    """Path, size and SHA-256 of every file, and its tensors checked against the digests its header names
    (a byte flipped in place leaves a file of the right size and layout: only this finds it)."""
    rows = []
    for path in paths:
        whole, found, named = tensor_digests(path)
        # A compact file's damaged chunk cannot be decoded: its entry is the reason, naming the record.
        corrupt = sorted(name if len(found.get(name) or "") == 64 else f"{name} ({found.get(name)})"
                         for name in named if found.get(name) != named[name])
        rows.append({"path": display(path, root), "bytes": Path(path).stat().st_size, "sha256": whole,
                     "tensors": "no digests in its header" if not named else
                     f"CORRUPT: {', '.join(corrupt)}" if corrupt else f"{len(named)} verified"})
    rows.sort(key=lambda r: r["path"])
    bad = [f"{r['path']} ({r['tensors']})" for r in rows if r["tensors"].startswith("CORRUPT")]
    summary = f"{len(rows)} run files, {sum(r['bytes'] for r in rows)} bytes" + (
        f"; tensors differ from their header's digests: {'; '.join(bad)}" if bad else ", every tensor matches its digest")
    return _entry("manifest", not bad, summary, rows)


def check_adam_replay(tables: dict[str, tuple], labels: dict[str, str]) -> dict:
    """Each run's Adam accounting table (flannel.analysis.adam: every step replayed from the recording alone, W_t from
    W_(t-1) and the recorded moments, m_t and v_t from the previous moments, the pre-clip grad and norm, with
    torch's single-tensor AdamW arithmetic in the parameter dtype): every element of every step must have been
    rebuilt bitwise. `tables` maps a run's name to (its table, whether it is tied). A recording that cannot be
    replayed (sparse records, another dtype, no moments) has no bitwise values and is not applicable."""
    rows, failures = [], []
    for name, (table, tied) in tables.items():
        row = {"run": name, "file": labels[name], "replayed_steps": 0, "first_failure": None, "note": None}
        row.update({f"{q}_min": None for q in adam.QUANTITIES})
        for record in table.to_dict("records"):
            replayed = {key: value for key, value in record.items() if key.endswith("_bitwise") and not math.isnan(value)}
            row["replayed_steps"] += bool(replayed)
            for key, value in replayed.items():
                quantity = key.split("_")[1]
                row[f"{quantity}_min"] = min(value, row[f"{quantity}_min"] if row[f"{quantity}_min"] is not None else 1.0)
            found = row["first_failure"] is None and adam.first_failure(record, tied)
            if found:
                tensor, fraction = found
                row["first_failure"] = f"{tensor} at step {record['step']}"
                failures.append(f"sanity check 9 ({name}): the Adam replay of {labels[name]} does not close at step "
                                f"{record['step']} in tensor '{tensor}': {fraction:.6%} of its elements rebuilt bitwise")
        if not row["replayed_steps"]:
            row["note"] = "not replayable (see its accounting table): sparse records, another dtype, or no moments"
        elif row["momentum_min"] is None:
            row["note"] = "moments not replayed (no grads or no grad_norms recorded); weights only"
        rows.append(row)
    replayed = [r for r in rows if r["replayed_steps"]]
    passed = _all(r["first_failure"] is None for r in replayed)
    if not replayed:
        summary = "no recording can be replayed" + (f" ({rows[0]['note']})" if rows else "")
    elif failures:
        summary = failures[0]
    else:
        steps = sum(r["replayed_steps"] for r in replayed)
        summary = (f"{len(replayed)} run(s), {steps} steps: weights, momentum and variance rebuilt bitwise in 100 % of "
                   "elements at every step")
    return _entry("adam_replay", passed, summary, rows, failures=failures)

"""The sanity report: this workflow's runs as a subject of the checks (flannel.sanity.checks), the notebooks' files
when the config names them (flannel.sanity.legacy), the report assembled, and its verdict.

In this workflow the tied runs of the config's seeds are the sweep ("Flannel 3") and its reference-seed
member is the reference ("Flannel 1"). Every run trains in its own job, so the sweep member and the
reference are one file; the run that can show state leaking between runs is the replica, retrained after
another seed in one process (flannel.training.loop.train_replica). So checks 3, 4 and 7 compare each reference
run with its replica.

`settings` (flannel.config.sanity_settings) holds what the checks need of the config: reference_seed,
warmup_seed, steps, record_every, compare_steps and init_scale.
"""

from __future__ import annotations

import torch

from ..analysis import adam
from ..errors import RecordingError, ReproducibilityError, SanityError
from ..outputs import display, read_table
from .checks import (check_adam_replay, check_dead_indices, check_initial_state, check_manifest, check_radius,
                     check_record_counts, check_replicas, check_step_differences, check_sweep_distinct)
from .legacy import legacy_checks
from .series import load_dead_indices, open_recording, run_series


def _open_run(path, tying: str, expected_config: dict | None, root):
    """A run's series, refused (naming the differing key) if it was recorded under another config."""
    recording = open_recording(path, root)
    try:
        recording.expect(tied=tying == "tied", config=expected_config)
    except RecordingError as error:
        raise SanityError(str(error).replace(str(path), display(path, root), 1)) from None
    return run_series(recording, display(path, root))


def workflow_checks(settings: dict, runs: dict, replicas: dict, canonical: torch.Tensor, root=".",
                    expected_config: dict | None = None, accounting: dict | None = None) -> dict:
    """The nine checks on this workflow's runs; `runs` and `replicas` map (tying, seed) to a recording path,
    `accounting` to its Adam accounting table (the adam_accounting rule's; made here when not given).
    With `expected_config` (the training sections the rule expects), a run recorded under another is refused."""
    accounting = ({key: read_table(path) for key, path in accounting.items()} if accounting is not None
                  else {key: adam.adam_accounting(path) for key, path in runs.items()})
    runs = {key: _open_run(path, key[0], expected_config, root) for key, path in runs.items()}
    replicas = {key: _open_run(path, key[0], expected_config, root) for key, path in replicas.items()}
    pairs = {f"{key[0]} seed {key[1]}": (runs[key], replicas[key]) for key in replicas if key in runs}
    every_file = [series[0] for series in [*runs.values(), *replicas.values()]]
    expected_steps = list(range(0, settings["steps"] + 1, settings["record_every"]))
    return {
        "dead_indices": check_dead_indices(every_file, canonical),
        "record_counts": check_record_counts(every_file, expected_steps,
                                             f"steps 0..{settings['steps']} every {settings['record_every']}"),
        "initial_state": check_initial_state(pairs, canonical),
        "step_differences": check_step_differences(
            {f"{name} {a.key}": (a, b) for name, (ours, theirs) in pairs.items() for a, b in zip(ours, theirs)},
            settings["compare_steps"], canonical),
        "sweep_distinct": check_sweep_distinct({seed: s[0] for (tying, seed), s in runs.items() if tying == "tied"},
                                               canonical, settings.get("init_seed")),
        "radius": check_radius([s for key in sorted(runs) for s in runs[key]], canonical, settings["init_scale"]),
        "replica": check_replicas({name: (a[0].source, b[0].source) for name, (a, b) in pairs.items()},
                                  {name: (a[0].file, b[0].file) for name, (a, b) in pairs.items()}),
        "manifest": check_manifest([s[0].source.path for s in [*runs.values(), *replicas.values()]], root),
        "adam_replay": check_adam_replay(
            {f"{tying} seed {seed}": (accounting[(tying, seed)], tying == "tied") for tying, seed in sorted(runs)},
            {f"{tying} seed {seed}": s[0].file for (tying, seed), s in sorted(runs.items())}),
    }


def sanity_report(settings: dict, *, runs: dict, replicas: dict, masks, expected_config: dict | None = None,
                  accounting: dict | None = None, legacy_flannel1=None, legacy_flannel3=None, legacy_masks=None,
                  root=".") -> dict:
    """Run every check and return the report (plain JSON types, relative paths, no timestamps)."""
    canonical = load_dead_indices(masks, root)
    reference = runs.get(("tied", settings["reference_seed"]))
    report = {"reference": reference and display(reference, root), "reference_seed": settings["reference_seed"],
              "replica_note": "each reference run is compared with its replica, retrained after seed "
                              f"{settings['warmup_seed']} in one process",
              "checks": workflow_checks(settings, runs, replicas, canonical, root, expected_config, accounting)}
    if legacy_flannel1 or legacy_flannel3:
        legacy_canonical = load_dead_indices(legacy_masks, root) if legacy_masks else canonical
        report["legacy"] = {"flannel1": legacy_flannel1 and display(legacy_flannel1, root),
                            "flannel3": legacy_flannel3 and display(legacy_flannel3, root),
                            "masks": display(legacy_masks or masks, root),
                            "checks": legacy_checks(settings, legacy_flannel1, legacy_flannel3, legacy_canonical, root)}
    entries = list(report["checks"].values()) + list(report.get("legacy", {}).get("checks", {}).values())
    failures = [f for e in entries if e["reproducibility"] for f in e.get("failures", [])]
    failures += [f"sanity check {e['number']}: {e['summary']}" for e in entries
                 if e["reproducibility"] and e["passed"] is False and not e.get("failures")]
    report["passed"] = all(e["passed"] is not False for e in entries)
    report["reproducibility"] = {"passed": not failures, "failures": failures}
    return report


def enforce(report: dict, fail: bool) -> str:
    """The verdict line; raises ReproducibilityError (naming the first differing tensor and step) when a
    reproducibility check failed and `fail` is set."""
    failures = report["reproducibility"]["failures"]
    if failures and fail:
        raise ReproducibilityError(failures[0] + (f" (and {len(failures) - 1} more, see report.md beside the report)" if len(failures) > 1 else ""))
    if failures:
        return f"reproducibility FAILED (not enforced: sanity.fail_on_reproducibility is false): {failures[0]}"
    return "passed" if report["passed"] else "reproducibility passed; other checks failed, see report.md beside the report"

"""The sanity checks (flannel.checks) on tiny real runs, planted divergences and synthetic legacy files."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import tiny_config, train_tiny
from flannel import checks
from flannel.config import ConfigError
from flannel.recording import Recording
from flannel.training import Run

# ---------------------------------------------------------------------------------------------------------
# helpers


def flip_byte(path, key: str, record: int) -> None:
    """Flip the lowest bit of one element of record `record` of tensor `key`, in place."""
    with open(path, "r+b") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        entry = json.loads(handle.read(size))[key]
        begin, end = entry["data_offsets"]
        offset = 8 + size + begin + record * (end - begin) // entry["shape"][0] + 2
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 1]))


def with_metadata(source, destination, **changes) -> None:
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    save_file(load_file(str(source)), str(destination), metadata={**metadata, **changes})


def report_for(tiny_data, runs, replicas, config=None, masks=None, **legacy):
    return checks.sanity_report(config or tiny_data["config"], runs=runs, replicas=replicas,
                                masks=masks or tiny_data["folder"] / "live_dead_tokens.safetensors", **legacy)


@pytest.fixture(scope="module")
def replicas(tiny_data, tmp_path_factory):
    """Replicas of tied and untied seed 42, each trained after seed 43 in this process."""
    folder = tmp_path_factory.mktemp("replicas")
    made = {}
    for tying in ("tied", "untied"):
        out = folder / tying / "seed42.safetensors"
        checks.train_replica(tiny_data["config"], Run(tying, 42), tiny_data["ids"], tiny_data["masks"], out, warmup_seed=43)
        made[(tying, 42)] = out
    return made


def legacy_files(folder, *, T=11, extra=1, V=60, n_dead=24, D=8, runs=3, scale=0.02, diverge=True):
    """A 1.20a file (embeddings [T, V, D], n_dead) and a 1.20c file (embeddings [runs, T + extra, n_dead, D])
    whose run 0 starts from the same dead rows as the 1.20a file and, with `diverge`, parts from it at step 1."""
    g = torch.Generator().manual_seed(0)
    dead = torch.sort(torch.randperm(V, generator=g)[:n_dead]).values
    drift = torch.randn(T + extra, V, D, generator=g).cumsum(0) * 1e-3
    drift[0] = 0
    f1 = torch.randn(V, D, generator=g) * scale + drift[:T]
    f3 = torch.randn(runs, T + extra, n_dead, D, generator=g) * scale
    f3[0] = f1[0, dead] + drift[:, dead]
    if diverge:
        f3[0, 1:] += torch.randn(T + extra - 1, n_dead, D, generator=g) * 1e-2
    paths = {"flannel1": folder / "1.20a_flannel_1.safetensors", "flannel3": folder / "1.20c_flannel_3.safetensors",
             "masks": folder / "legacy_masks.safetensors"}
    save_file({"embeddings": f1.to(torch.bfloat16), "n_dead": torch.tensor(n_dead)}, str(paths["flannel1"]))
    save_file({"embeddings": f3.to(torch.bfloat16), "dead_indices": dead, "n_dead": torch.tensor(n_dead),
               "n_runs": torch.tensor(runs), "base_seed": torch.tensor(42)}, str(paths["flannel3"]))
    mask = torch.zeros(V, dtype=torch.bool)
    mask[dead] = True
    save_file({"dead_mask": mask, "live_mask": ~mask, "dead_indices": dead, "live_indices": torch.nonzero(~mask).flatten()},
              str(paths["masks"]))
    return paths


# ---------------------------------------------------------------------------------------------------------
# this workflow's runs


def test_replica_reproduces_the_reference_and_every_check_passes(tiny_data, tiny_runs, replicas, tmp_path):
    report = report_for(tiny_data, tiny_runs, replicas)
    assert report["passed"] and report["reproducibility"] == {"passed": True, "failures": []}
    assert [e["number"] for e in report["checks"].values()] == list(range(1, 9))
    assert all(e["passed"] for e in report["checks"].values())
    assert {r["pair"] for r in report["checks"]["replica"]["rows"]} == {"tied seed 42", "untied seed 42"}
    assert report["checks"]["sweep_distinct"]["rows"][0]["all_frobenius"] > 0
    assert checks.enforce(report, True) == "passed"


def test_a_replica_with_another_data_seed_fails_naming_the_first_tensor_and_step(tiny_data, tiny_runs, tmp_path):
    other = train_tiny(tiny_data, tmp_path, "tied", 42, tiny_config(training={"data_seed": 7}))
    report = report_for(tiny_data, tiny_runs, {("tied", 42): other})
    entries = report["checks"]
    # Same init, other batches: t=0 identical, apart from step 1 on (1.22e's picture).
    assert entries["initial_state"]["passed"] is True
    assert entries["step_differences"]["passed"] is False
    assert [r["step"] for r in entries["step_differences"]["rows"] if r["all_frobenius"] > 0] == [1, 10, 20]
    assert entries["replica"]["rows"][0]["metadata_differs"] == "data_seed, config"
    assert not report["passed"] and not report["reproducibility"]["passed"]
    with pytest.raises(checks.ReproducibilityError, match=r"first differ in tensor 'logits' at step 1\b"):
        checks.enforce(report, True)
    # Not enforced: a verdict line instead of an error.
    assert checks.enforce(report, False).startswith("reproducibility FAILED (not enforced")


@pytest.mark.parametrize("key, record", [("embeddings", 5), ("variance", 20), ("grads", 1)])
def test_one_flipped_byte_is_found_at_its_tensor_and_step(tiny_runs, key, record, tmp_path):
    copy = tmp_path / "seed42.safetensors"
    shutil.copyfile(tiny_runs[("tied", 42)], copy)
    flip_byte(copy, key, record)
    found = checks.first_difference(Recording(tiny_runs[("tied", 42)]), Recording(copy))
    assert (found["tensor"], found["step"]) == (key, record)
    assert found["detail"].startswith("1 of ")


def test_equal_embeddings_with_another_full_state_fail_check_3(tiny_data, tiny_runs, tmp_path):
    """1.22e's blind spot: E and W equal at t=0 while the rest of the model is not."""
    copy = tmp_path / "tied" / "seed42.safetensors"
    copy.parent.mkdir()
    with_metadata(tiny_runs[("tied", 42)], copy, state_sha256_initial="f" * 64)
    report = report_for(tiny_data, tiny_runs, {("tied", 42): copy})
    row = report["checks"]["initial_state"]["rows"][0]
    assert (row["recorded_t0_equal"], row["state_digest_equal"]) == (True, False)
    assert "the model state outside the recorded matrices" in report["reproducibility"]["failures"][0]
    assert report["checks"]["replica"]["rows"][0]["first_tensor"] == "model state (state_sha256_initial)"
    with pytest.raises(checks.ReproducibilityError, match="at step 0"):
        checks.enforce(report, True)


def test_other_dead_indices_and_record_counts_fail_without_failing_reproducibility(tiny_data, tiny_runs, replicas, tmp_path):
    masks = dict(tiny_data["masks"])
    masks["dead_indices"] = masks["dead_indices"][1:]
    save_file(masks, str(tmp_path / "masks.safetensors"))
    report = report_for(tiny_data, tiny_runs, replicas, config=tiny_config(training={"steps": 40}),
                        masks=tmp_path / "masks.safetensors")
    assert report["checks"]["dead_indices"]["passed"] is False
    assert report["checks"]["record_counts"]["passed"] is False
    assert not report["passed"] and report["reproducibility"]["passed"]
    assert "other checks failed" in checks.enforce(report, True)


def test_a_sweep_of_identical_runs_fails_check_5(tiny_data, tiny_runs, tmp_path):
    twin = tmp_path / "seed43.safetensors"
    shutil.copyfile(tiny_runs[("tied", 42)], twin)
    report = report_for(tiny_data, {("tied", 42): tiny_runs[("tied", 42)], ("tied", 43): twin}, {})
    assert report["checks"]["sweep_distinct"]["passed"] is False
    assert "identical at t=0: seeds 42/43" in report["checks"]["sweep_distinct"]["summary"]
    assert report["checks"]["replica"]["passed"] is None


def test_the_checks_read_records_one_at_a_time(tiny_runs, monkeypatch):
    """No per-record tensor is ever read whole: memory stays that of one record."""
    whole = Recording.tensor

    def refuse_records(self, name):
        assert name.split("_")[0] not in checks.CAUSAL_ORDER, f"{name} read whole"
        return whole(self, name)

    monkeypatch.setattr(Recording, "tensor", refuse_records)
    assert checks.first_difference(Recording(tiny_runs[("untied", 42)]), Recording(tiny_runs[("untied", 42)])) is None


def test_the_replica_refuses_its_own_seed_as_warm_up(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="sanity.replica_warmup_seed"):
        checks.train_replica(tiny_data["config"], Run("tied", 42), tiny_data["ids"], tiny_data["masks"],
                             tmp_path / "r.safetensors", warmup_seed=42)


# ---------------------------------------------------------------------------------------------------------
# numbers


def test_expected_radius_is_the_notebooks_0159():
    expected = checks.expected_radius(0.02, 64, n_rows=3699)
    assert expected["expected"] == pytest.approx(0.15937, abs=1e-5)
    assert expected["expected"] == pytest.approx(0.02 * (64 - 0.5) ** 0.5, rel=1e-3)
    assert expected["expected_centred"] == pytest.approx(expected["expected"] * (1 - 1 / 3699) ** 0.5)


def test_mean_radius_of_a_gaussian_cloud_meets_its_expectation():
    cloud = torch.randn(20000, 64, generator=torch.Generator().manual_seed(1)) * 0.02
    assert checks.mean_radius(cloud) == pytest.approx(checks.expected_radius(0.02, 64, 20000)["expected_centred"], rel=2e-3)


# ---------------------------------------------------------------------------------------------------------
# the notebooks' layouts


def test_legacy_files_with_one_record_too_many_are_reported_not_a_crash(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path)
    report = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"],
                        legacy_flannel3=paths["flannel3"], legacy_masks=paths["masks"])
    legacy = report["legacy"]["checks"]
    assert legacy["dead_indices"]["passed"] is True
    assert legacy["record_counts"]["passed"] is False
    assert "holds 12 records per run" in legacy["record_counts"]["summary"]
    assert "1 record too many; the comparisons use the first 11" in legacy["record_counts"]["summary"]
    assert legacy["initial_state"]["passed"] is True  # equal at t=0 ...
    assert "no full-state digest" in legacy["initial_state"]["summary"]
    assert [r["step"] for r in legacy["step_differences"]["rows"]] == [1, 10]  # ... apart from step 1 on
    assert all(r["dead_frobenius"] > 0 for r in legacy["step_differences"]["rows"])
    assert len(legacy["sweep_distinct"]["rows"]) == 3 and legacy["sweep_distinct"]["passed"]
    assert {r["last_step"] for r in legacy["radius"]["rows"]} == {10}
    assert [r["path"] for r in legacy["manifest"]["rows"]] == [paths["flannel1"].name, paths["flannel3"].name]
    # The workflow's own checks still pass; the report as a whole does not.
    assert report["reproducibility"]["passed"] and not report["passed"]
    md = checks.markdown(report)
    assert "## Legacy files" in md and "1 record too many" in md


def test_legacy_files_that_agree_pass(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path, extra=0, diverge=False)
    report = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"],
                        legacy_flannel3=paths["flannel3"], legacy_masks=paths["masks"])
    assert {name: e["passed"] for name, e in report["legacy"]["checks"].items()} == {
        "dead_indices": True, "record_counts": True, "initial_state": True, "step_differences": True,
        "sweep_distinct": True, "radius": True, "manifest": True}
    assert report["checks"]["replica"]["passed"]


def test_a_legacy_cloud_at_twice_the_scale_fails_the_radius_check(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path, V=300, n_dead=200, D=16, scale=0.04)
    report = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"], legacy_masks=paths["masks"])
    radius = report["legacy"]["checks"]["radius"]
    assert radius["passed"] is False
    assert radius["rows"][0]["radius_t0"] == pytest.approx(2 * radius["rows"][0]["expected_centred"], rel=0.05)
    assert set(report["legacy"]["checks"]) == {"dead_indices", "record_counts", "radius", "manifest"}


def test_a_legacy_file_of_the_wrong_layout_is_one_line_naming_the_key(tiny_data, tiny_runs, tmp_path):
    paths = legacy_files(tmp_path)
    broken = tmp_path / "broken.safetensors"
    tensors = load_file(str(paths["flannel3"]))
    del tensors["base_seed"]
    save_file(tensors, str(broken))
    with pytest.raises(checks.SanityError, match=r"^broken.safetensors: not the 1.20c layout, no tensor 'base_seed'$"):
        report_for(tiny_data, tiny_runs, {}, legacy_flannel3=broken)
    with pytest.raises(checks.SanityError, match=r"1.20a layout, 'embeddings' has shape \[3, 12, 24, 8\]"):
        report_for(tiny_data, tiny_runs, {}, legacy_flannel1=paths["flannel3"])


# ---------------------------------------------------------------------------------------------------------
# outputs


def test_report_files_are_relative_sorted_and_hash_what_they_list(tiny_data, tiny_runs, replicas, tmp_path):
    report = checks.sanity_report(tiny_data["config"], runs=tiny_runs, replicas=replicas,
                                  masks=tiny_data["folder"] / "live_dead_tokens.safetensors", root=tmp_path)
    out = {name: tmp_path / f"out.{name}" for name in ("json", "md", "tsv")}
    checks.write_report(report, out["json"], out["md"], out["tsv"])
    lines = out["tsv"].read_text().splitlines()
    assert lines[0] == "path\tbytes\tsha256" and len(lines) == 1 + len(tiny_runs) + len(replicas)
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    from flannel.outputs import sha256_file

    listed = {r[2] for r in rows}
    assert {sha256_file(p) for p in [*tiny_runs.values(), *replicas.values()]} == listed
    for path in out.values():
        text = path.read_text()
        assert "/tmp" not in text and str(tmp_path) not in text
    assert json.loads(out["json"].read_text())["passed"] is True

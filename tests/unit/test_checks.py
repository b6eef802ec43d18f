"""The sanity checks (flannel.sanity.checks, flannel.sanity.legacy, flannel.sanity.report) on tiny real runs,
planted divergences and synthetic legacy files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import flip_byte, legacy_files, tiny_config, train_tiny, with_metadata
from safetensors.torch import load_file, save_file

from flannel.analysis.metrics import cloud
from flannel.config import sanity_settings
from flannel.errors import ConfigError, ReproducibilityError, SanityError
from flannel.recording import Recording
from flannel.sanity import checks, render, report, series
from flannel.training import loop
from flannel.training.loop import Run, train_replica, window_batches

# ---------------------------------------------------------------------------------------------------------
# helpers


def report_for(tiny_data, runs, replicas, config=None, masks=None, **legacy):
    return report.sanity_report(sanity_settings(config or tiny_data["config"]), runs=runs, replicas=replicas,
                                masks=masks or tiny_data["folder"] / "live_dead_tokens.safetensors", **legacy)


@pytest.fixture(scope="module")
def replicas(tiny_data, tmp_path_factory):
    """Replicas of tied and untied seed 42, each trained after seed 43 in this process."""
    folder = tmp_path_factory.mktemp("replicas")
    made = {}
    for tying in ("tied", "untied"):
        out = folder / tying / "seed42.safetensors"
        train_replica(tiny_data["config"], Run(tying, 42), tiny_data["ids"], tiny_data["masks"], out, warmup_seed=43)
        made[(tying, 42)] = out
    return made


# ---------------------------------------------------------------------------------------------------------
# this workflow's runs


def test_replica_reproduces_the_reference_and_every_check_passes(tiny_data, tiny_runs, replicas, tmp_path):
    made = report_for(tiny_data, tiny_runs, replicas)
    assert made["passed"] and made["reproducibility"] == {"passed": True, "failures": []}
    assert [e["number"] for e in made["checks"].values()] == list(range(1, 10))
    assert all(e["passed"] for e in made["checks"].values())
    assert {r["pair"] for r in made["checks"]["replica"]["rows"]} == {"tied seed 42", "untied seed 42"}
    assert made["checks"]["sweep_distinct"]["rows"][0]["all_frobenius"] > 0
    assert report.enforce(made, True) == "passed"


def test_a_replica_with_another_data_seed_fails_naming_the_first_tensor_and_step(tiny_data, tiny_runs, tmp_path):
    other = train_tiny(tiny_data, tmp_path, "tied", 42, tiny_config(training={"data_seed": 7}))
    made = report_for(tiny_data, tiny_runs, {("tied", 42): other})
    entries = made["checks"]
    # Same init, other batches: t=0 identical, apart from step 1 on (1.22e's picture).
    assert entries["initial_state"]["passed"] is True
    assert entries["step_differences"]["passed"] is False
    assert [r["step"] for r in entries["step_differences"]["rows"] if r["all_frobenius"] > 0] == [1, 10, 20]
    assert entries["replica"]["rows"][0]["metadata_differs"] == "data_seed, config"
    assert not made["passed"] and not made["reproducibility"]["passed"]
    with pytest.raises(ReproducibilityError, match=r"first differ in tensor 'h_mean' at step 1\b"):
        report.enforce(made, True)
    # Not enforced: a verdict line instead of an error.
    assert report.enforce(made, False).startswith("reproducibility FAILED (not enforced")


def test_the_warm_up_is_two_recording_intervals_with_recording(tiny_data, tmp_path, caplog):
    config = tiny_config(training={"steps": 20}, recording={"record_every": 5})
    assert loop.warmup_config(config)["training"]["steps"] == 10 and config["training"]["steps"] == 20
    assert loop.warmup_config(tiny_config(training={"steps": 1}))["training"]["steps"] == 1
    with caplog.at_level("INFO", logger="flannel.training.loop"):
        train_replica(config, Run("tied", 42), tiny_data["ids"], tiny_data["masks"], tmp_path / "r.safetensors",
                      warmup_seed=43)
    assert "tied seed 43: step 10/10" in caplog.text and "tied seed 42: step 20/20" in caplog.text


def test_state_a_short_warm_up_leaves_behind_still_fails_the_replica(tiny_data, tiny_runs, tmp_path, monkeypatch):
    """A planted leak: the batch order seeded by whichever run comes first in a process, as a cache of the
    sampler would do. Alone in its process (the reference's job) a run is unaffected; after the replica's
    few-step warm-up it trains on seed 43's batches, and check 7 fails naming the first differing tensor."""
    first_seed = {}

    def cached_sampler(n_tokens, seq_len, batch_size, seed, windows="every_offset"):
        return window_batches(n_tokens, seq_len, batch_size, first_seed.setdefault("seed", seed), windows)

    monkeypatch.setattr(loop, "window_batches", cached_sampler)
    out = tmp_path / "tied" / "seed42.safetensors"
    train_replica(tiny_data["config"], Run("tied", 42), tiny_data["ids"], tiny_data["masks"], out, warmup_seed=43)
    made = report_for(tiny_data, tiny_runs, {("tied", 42): out})
    assert made["checks"]["initial_state"]["passed"] is True  # the leak reaches the batches, not the init
    assert made["checks"]["replica"]["passed"] is False and not made["reproducibility"]["passed"]
    with pytest.raises(ReproducibilityError, match=r"first differ in tensor 'h_mean' at step 1\b"):
        report.enforce(made, True)


@pytest.mark.parametrize("key, record", [("embeddings", 5), ("variance", 20), ("grads", 1), ("h_mean", 3)])
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
    made = report_for(tiny_data, tiny_runs, {("tied", 42): copy})
    row = made["checks"]["initial_state"]["rows"][0]
    assert (row["recorded_t0_equal"], row["state_digest_equal"]) == (True, False)
    assert "the model state outside the recorded matrices" in made["reproducibility"]["failures"][0]
    assert made["checks"]["replica"]["rows"][0]["first_tensor"] == "model state (state_sha256_initial)"
    with pytest.raises(ReproducibilityError, match="at step 0"):
        report.enforce(made, True)


def test_other_dead_indices_and_record_counts_fail_without_failing_reproducibility(tiny_data, tiny_runs, replicas, tmp_path):
    masks = dict(tiny_data["masks"])
    masks["dead_indices"] = masks["dead_indices"][1:]
    save_file(masks, str(tmp_path / "masks.safetensors"))
    made = report_for(tiny_data, tiny_runs, replicas, config=tiny_config(training={"steps": 40}),
                        masks=tmp_path / "masks.safetensors")
    assert made["checks"]["dead_indices"]["passed"] is False
    assert made["checks"]["record_counts"]["passed"] is False
    assert not made["passed"] and made["reproducibility"]["passed"]
    assert "other checks failed" in report.enforce(made, True)


def test_a_sweep_of_identical_runs_fails_check_5(tiny_data, tiny_runs, tmp_path):
    twin = tmp_path / "seed43.safetensors"
    shutil.copyfile(tiny_runs[("tied", 42)], twin)
    made = report_for(tiny_data, {("tied", 42): tiny_runs[("tied", 42)], ("tied", 43): twin}, {})
    assert made["checks"]["sweep_distinct"]["passed"] is False
    assert "identical at t=0: seeds 42/43" in made["checks"]["sweep_distinct"]["summary"]
    assert made["checks"]["replica"]["passed"] is None


def test_runs_sharing_the_configs_init_seed_must_be_identical_at_t0(tiny_data, tmp_path):
    config = tiny_config(training={"init_seed": 7})
    runs = {("tied", seed): train_tiny(tiny_data, tmp_path, "tied", seed, config) for seed in (42, 43)}
    made = report_for(tiny_data, runs, {}, config)
    assert made["checks"]["sweep_distinct"]["passed"] is True
    assert "1 sharing an init seed are identical" in made["checks"]["sweep_distinct"]["summary"]
    # Under a config whose runs each have their own init seed, the same files fail.
    assert report_for(tiny_data, runs, {})["checks"]["sweep_distinct"]["passed"] is False


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
        train_replica(tiny_data["config"], Run("tied", 42), tiny_data["ids"], tiny_data["masks"],
                             tmp_path / "r.safetensors", warmup_seed=42)


# ---------------------------------------------------------------------------------------------------------
# numbers


def test_expected_radius_is_the_notebooks_0159():
    expected = series.expected_radius(0.02, 64, n_rows=3699)
    assert expected["expected"] == pytest.approx(0.15937, abs=1e-5)
    assert expected["expected"] == pytest.approx(0.02 * (64 - 0.5) ** 0.5, rel=1e-3)
    assert expected["expected_centred"] == pytest.approx(expected["expected"] * (1 - 1 / 3699) ** 0.5)


def test_mean_radius_of_a_gaussian_cloud_meets_its_expectation():
    rows = torch.randn(20000, 64, generator=torch.Generator().manual_seed(1)) * 0.02
    assert cloud(rows)["radius_centroid_mean"] == pytest.approx(series.expected_radius(0.02, 64, 20000)["expected_centred"], rel=2e-3)


# ---------------------------------------------------------------------------------------------------------
# the notebooks' layouts


def test_legacy_files_with_one_record_too_many_are_reported_not_a_crash(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path)
    made = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"],
                        legacy_flannel3=paths["flannel3"], legacy_masks=paths["masks"])
    legacy = made["legacy"]["checks"]
    assert legacy["dead_indices"]["passed"] is True
    assert legacy["record_counts"]["passed"] is False
    assert "holds 12 records, 1 record too many against 11" in legacy["record_counts"]["summary"]
    assert "the comparisons use the first 11" in legacy["record_counts"]["summary"]
    assert legacy["initial_state"]["passed"] is True  # equal at t=0 ...
    assert "no full-state digest" in legacy["initial_state"]["summary"]
    assert [r["step"] for r in legacy["step_differences"]["rows"]] == [1, 10]  # ... apart from step 1 on
    assert all(r["dead_frobenius"] > 0 for r in legacy["step_differences"]["rows"])
    assert len(legacy["sweep_distinct"]["rows"]) == 3 and legacy["sweep_distinct"]["passed"]
    assert {r["last_step"] for r in legacy["radius"]["rows"]} == {10}
    assert [r["path"] for r in legacy["manifest"]["rows"]] == [paths["flannel1"].name, paths["flannel3"].name]
    # The workflow's own checks still pass; the report as a whole does not.
    assert made["reproducibility"]["passed"] and not made["passed"]
    md = render.markdown(made)
    assert "## Legacy files" in md and "1 record too many" in md


def test_legacy_files_that_agree_pass(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path, extra=0, diverge=False)
    made = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"],
                        legacy_flannel3=paths["flannel3"], legacy_masks=paths["masks"])
    assert {name: e["passed"] for name, e in made["legacy"]["checks"].items()} == {
        "dead_indices": True, "record_counts": True, "initial_state": True, "step_differences": True,
        "sweep_distinct": True, "radius": True, "manifest": True}
    assert made["checks"]["replica"]["passed"]


def test_a_legacy_cloud_at_twice_the_scale_fails_the_radius_check(tiny_data, tiny_runs, replicas, tmp_path):
    paths = legacy_files(tmp_path, V=300, n_dead=200, D=16, scale=0.04)
    made = report_for(tiny_data, tiny_runs, replicas, legacy_flannel1=paths["flannel1"], legacy_masks=paths["masks"])
    radius = made["legacy"]["checks"]["radius"]
    assert radius["passed"] is False
    assert radius["rows"][0]["radius_t0"] == pytest.approx(2 * radius["rows"][0]["expected_centred"], rel=0.05)
    assert set(made["legacy"]["checks"]) == {"dead_indices", "record_counts", "radius", "manifest"}


def test_a_legacy_file_of_the_wrong_layout_is_one_line_naming_the_key(tiny_data, tiny_runs, tmp_path):
    paths = legacy_files(tmp_path)
    broken = tmp_path / "broken.safetensors"
    tensors = load_file(str(paths["flannel3"]))
    del tensors["base_seed"]
    save_file(tensors, str(broken))
    with pytest.raises(SanityError, match=r"^broken.safetensors: not the 1.20c layout, no tensor 'base_seed'$"):
        report_for(tiny_data, tiny_runs, {}, legacy_flannel3=broken)
    with pytest.raises(SanityError, match=r"1.20a layout, 'embeddings' has shape \[3, 12, 24, 8\]"):
        report_for(tiny_data, tiny_runs, {}, legacy_flannel1=paths["flannel3"])


# ---------------------------------------------------------------------------------------------------------
# outputs


def test_report_files_are_relative_sorted_and_hash_what_they_list(tiny_data, tiny_runs, replicas, tmp_path):
    made = report.sanity_report(sanity_settings(tiny_data["config"]), runs=tiny_runs, replicas=replicas,
                                masks=tiny_data["folder"] / "live_dead_tokens.safetensors", root=tmp_path)
    out = {name: tmp_path / f"out.{name}" for name in ("json", "md", "tsv")}
    render.write_report(made, out["json"], out["md"], out["tsv"])
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


def test_a_byte_flipped_in_place_fails_the_manifest_naming_the_tensor(tiny_data, tiny_runs, tmp_path):
    """Same size, same layout, plausible values: only the header's per-tensor digests catch it."""
    copy = tmp_path / "tied" / "seed43.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(tiny_runs[("tied", 43)], copy)
    flip_byte(copy, "momentum", 7)
    made = report_for(tiny_data, {**tiny_runs, ("tied", 43): copy}, {})
    manifest = made["checks"]["manifest"]
    assert manifest["passed"] is False and "seed43.safetensors (CORRUPT: momentum)" in manifest["summary"]
    assert {r["tensors"] for r in manifest["rows"] if not r["path"].endswith("seed43.safetensors")} == {"19 verified", "23 verified"}  # tied, untied: every tensor

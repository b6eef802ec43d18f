"""The compact recording: the same decoded bytes as safetensors, its own bytes reproducible, the moments
derived only where the replay is bitwise, readable by plain zarr, damage reported by tensor and record."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
import zarr
from zarr.storage import ZipStore

from helpers import tensor_bytes, tiny_config, train_tiny

from flannel.analysis.adam import adam_accounting
from flannel.compact import KEYFRAME_EVERY
from flannel.errors import RecordingError
from flannel.recording import Recording, convert_recording
from flannel.sanity.checks import check_manifest


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and tensor_bytes(a) == tensor_bytes(b)


@pytest.fixture(scope="module")
def both_formats(tiny_data, tmp_path_factory):
    """Untied seed 42 for 40 steps (past a keyframe), as safetensors and twice as compact."""
    folder = tmp_path_factory.mktemp("formats")
    config = tiny_config(training={"steps": 40})
    return {name: train_tiny(tiny_data, folder / name, "untied", 42, config, suffix)
            for name, suffix in (("safetensors", ".safetensors"), ("compact", ".zarr.zip"), ("again", ".zarr.zip"))}


def test_compact_decodes_to_the_safetensors_bytes(both_formats):
    raw, compact = Recording(both_formats["safetensors"]), Recording(both_formats["compact"])
    assert compact.keys == raw.keys
    for name in sorted(raw.keys):
        assert same_bytes(compact.tensor(name), raw.tensor(name)), name
    for index in (0, 1, 31, 32, 33, 40):  # around the keyframe, read out of order
        assert same_bytes(compact.record("momentum_W", index), raw.record("momentum_W", index)), index
    differs = {key for key in raw.metadata if raw.metadata[key] != compact.metadata.get(key)}
    assert differs == {"format"}  # the config, digests, versions and state digests are the same


def test_compact_files_are_byte_reproducible(both_formats):
    assert both_formats["compact"].read_bytes() == both_formats["again"].read_bytes()
    assert both_formats["compact"].stat().st_size * 2 < both_formats["safetensors"].stat().st_size


def test_export_is_the_safetensors_file_byte_for_byte(both_formats, tmp_path):
    convert_recording(both_formats["compact"], tmp_path / "exported.safetensors")
    assert (tmp_path / "exported.safetensors").read_bytes() == both_formats["safetensors"].read_bytes()


def test_converting_to_compact_gives_the_recorders_file(both_formats, tmp_path):
    convert_recording(both_formats["safetensors"], tmp_path / "converted.zarr.zip")
    assert (tmp_path / "converted.zarr.zip").read_bytes() == both_formats["compact"].read_bytes()


def test_moments_are_stored_only_at_keyframes_where_the_replay_closes(both_formats):
    group = zarr.open_group(ZipStore(both_formats["compact"], mode="r"), mode="r")
    for name in ("momentum_E", "momentum_W", "variance_E", "variance_W"):
        assert group[name].attrs["stored_records"] == [0, KEYFRAME_EVERY]


def test_the_adam_accounting_counts_derived_moments_as_rebuilt_and_equals_the_safetensors_one(both_formats):
    compact, raw = Recording(both_formats["compact"]), Recording(both_formats["safetensors"])
    assert compact.replayed_records("variance_E") == frozenset(range(41)) - {0, KEYFRAME_EVERY}
    assert compact.replayed_records("embeddings_W") == raw.replayed_records("momentum_W") == frozenset()
    table = adam_accounting(both_formats["compact"])
    pd.testing.assert_frame_equal(table, adam_accounting(both_formats["safetensors"]), check_exact=True)
    assert (table.filter(like="_bitwise").iloc[1:] == 1.0).all().all()


def test_a_moment_the_replay_cannot_rebuild_is_stored(tiny_data, tmp_path):
    # float32 moments recorded in bf16: the recorded previous moment is rounded, so no replay from it closes.
    config = tiny_config(training={"steps": 6, "optimizer_state_dtype": "float32"})
    compact = train_tiny(tiny_data, tmp_path / "c", "tied", 42, config, ".zarr.zip")
    raw = train_tiny(tiny_data, tmp_path / "r", "tied", 42, config)
    group = zarr.open_group(ZipStore(compact, mode="r"), mode="r")
    assert group["variance"].attrs["stored_records"] == list(range(7))
    assert same_bytes(Recording(compact).tensor("variance"), Recording(raw).tensor("variance"))


def test_moments_without_grads_are_stored_along_time(tiny_data, tmp_path):
    config = tiny_config(recording={"quantities": ["embeddings", "variance"]})
    compact = train_tiny(tiny_data, tmp_path / "c", "tied", 42, config, ".zarr.zip")
    raw = train_tiny(tiny_data, tmp_path / "r", "tied", 42, config)
    group = zarr.open_group(ZipStore(compact, mode="r"), mode="r")
    assert "stored_records" not in group["variance"].attrs and group["variance"].chunks[-1] > 1
    assert same_bytes(Recording(compact).tensor("variance"), Recording(raw).tensor("variance"))


def test_plain_zarr_reads_the_stored_layer(both_formats):
    group = zarr.open_group(ZipStore(both_formats["compact"], mode="r"), mode="r")
    raw = Recording(both_formats["safetensors"])
    embeddings = group["embeddings_W"]
    assert embeddings.shape == (*raw.shape("embeddings_W")[1:], raw.n_records)  # records last
    assert np.array_equal(embeddings[..., 17], raw.record("embeddings_W", 17).view(torch.uint16).numpy())
    derived = group["momentum_W"][..., 17]
    assert (derived == 0x7FC0).all()  # a derived record is NaN to a reader without the replay
    h_mean = group["h_mean"]  # a plain stored matrix of float32 bits, records last, like the logits
    assert h_mean.shape == (raw.shape("h_mean")[1], raw.n_records) and h_mean.dtype == np.uint32
    assert np.array_equal(np.ascontiguousarray(h_mean[...].T).view(np.float32), raw.tensor("h_mean").numpy())
    assert json.loads(group.attrs["metadata"]["config"]) == raw.config


def _chunk_offset(path, member: str) -> int:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = np.frombuffer(handle.read(4), dtype="<u2")
    return info.header_offset + 30 + int(name_length) + int(extra_length) + info.file_size // 2


def test_a_flipped_byte_fails_check_8_naming_the_tensor_and_record(both_formats, tmp_path):
    damaged = tmp_path / "seed42.zarr.zip"
    damaged.write_bytes(both_formats["compact"].read_bytes())
    offset = _chunk_offset(damaged, "embeddings_W/c/0/0/0")
    with open(damaged, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 1]))
    entry = check_manifest([damaged], root=tmp_path)
    assert not entry["passed"]
    assert "embeddings_W" in entry["summary"] and "at record 0" in entry["summary"]
    assert "grads_W" not in entry["summary"]


def test_a_truncated_compact_file_is_one_line_naming_it(both_formats, tmp_path):
    truncated = tmp_path / "seed42.zarr.zip"
    truncated.write_bytes(both_formats["compact"].read_bytes()[:-100])
    with pytest.raises(RecordingError, match=r"seed42\.zarr\.zip: truncated or not a compact recording") as error:
        Recording(truncated)
    assert "\n" not in str(error.value)

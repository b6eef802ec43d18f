"""Golden bytes: the tensor payload of the test config's runs (both tyings, both numeric paths), whose SHA-256
was written down on the machine that made them (an Intel Xeon with AVX-512 and AMX). With portable_numerics (the
default) the same run gives the same bytes on any x86-64 CPU with AVX2, Intel or AMD, so one hash per case holds
on every such CPU; a failure on one of them means a kernel choice the portable mode does not pin yet.

The payload is every byte after the safetensors header: all tensors. The header is left out because it names
package versions (numpy and Python are not pinned); its numerics entry is checked instead. Besides the payload,
each tensor's own SHA-256 (the header's tensor_sha256, checked against the bytes) is compared with
golden_tensors.json, so a changed hash names the tensor that changed: when h_mean joined the recording, only
its entry was new and every earlier tensor kept its digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import payload_sha256, tiny_config, train_tiny

from flannel.recording import Recording, tensor_digests
from flannel.training.numerics import x86_64

GOLDEN_TENSORS = json.loads((Path(__file__).with_name("golden_tensors.json")).read_text())

# (tying, compute_dtype) -> SHA-256 of the payload of config/test.yaml's seed-42 run. The fast path's (float32)
# since its products left MKL (flannel.kernels); the faithful path's (bf16) are older, and unchanged by that.
# Changed once more when h_mean joined the recording (every other tensor's digest unchanged: golden_tensors.json).
GOLDEN = {
    ("tied", "float32"): "6c2c44fa574df8697c994ccc31bc796ab2963d57811af4c21fb992a3c6da6463",
    ("untied", "float32"): "e6533873e9b71e4dabf7eeb368d2bb05133c114410e3631be5f2881ff201e600",
    ("tied", "bfloat16"): "09fe01b8ea270b0359c6fde4de2e0613c59e6e3fbbe4885b99df263a85eae297",
    ("untied", "bfloat16"): "3e2af352eb23435c48ef538cca74289f6bdd28024d15bcba90d4a27102dfb0b0",
}


@pytest.mark.skipif(not x86_64(), reason="the portable numerics pin x86-64 kernels")
@pytest.mark.parametrize("tying, compute_dtype", list(GOLDEN), ids=[f"{t}-{d}" for t, d in GOLDEN])
def test_run_bytes_equal_the_golden_hash(tiny_data, tmp_path, tying, compute_dtype):
    path = train_tiny(tiny_data, tmp_path, tying, 42, tiny_config(training={"compute_dtype": compute_dtype}))
    numerics = json.loads(Recording(path).metadata["numerics"])
    assert (numerics["portable"], numerics["aten_cpu_capability"], numerics["onednn_matmul"]) == (True, "AVX2", False)
    assert numerics["step_kernels"] == "flannel.kernels; numpy's OpenBLAS Haswell, 1 thread"
    _, found, named = tensor_digests(path)
    assert found == named  # the header's digests are those of the bytes
    golden = GOLDEN_TENSORS[f"{tying}-{compute_dtype}"]
    changed = sorted(name for name in golden.keys() | named.keys() if golden.get(name) != named.get(name))
    assert not changed, f"tensors whose bytes differ from the golden run's: {changed}"
    assert payload_sha256(path) == GOLDEN[tying, compute_dtype]

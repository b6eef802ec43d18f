"""Golden bytes: the tensor payload of the test config's runs (both tyings, both numeric paths), whose SHA-256
was written down on the machine that made them. With portable_numerics (the default) the same run gives the
same bytes on any x86-64 CPU with AVX2, so these hold on every such CPU; a failure on one of them means a kernel
choice the portable mode does not pin yet.

The payload is every byte after the safetensors header: all tensors. The header is left out because it names
package versions (numpy and Python are not pinned); its numerics entry is checked instead.
"""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from helpers import tiny_config, train_tiny

from flannel.numerics import x86_64
from flannel.recording import Recording

# (tying, compute_dtype) -> SHA-256 of the payload of config/test.yaml's seed-42 run.
GOLDEN = {
    ("tied", "float32"): "8cca2675832704eb0aff623e7c78fa9e88e570968422fd52e43577d749f02373",
    ("untied", "float32"): "841cb76a326adb5734d4d9cc1b9258ce31840a9fb97634174f22ffa42f81c2c6",
    ("tied", "bfloat16"): "72d675f398b3be88c6cd5aa56d24858b6322be67ff90a619158e03bd233029a1",
    ("untied", "bfloat16"): "e50f97e56dd35a5339dbcc83069e7f7ad4f45dff7b5f33694895868bd9fef4b4",
}


def payload_sha256(path) -> str:
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + header_size)
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.skipif(not x86_64(), reason="the portable numerics pin x86-64 kernels")
@pytest.mark.parametrize("tying, compute_dtype", list(GOLDEN), ids=[f"{t}-{d}" for t, d in GOLDEN])
def test_run_bytes_equal_the_golden_hash(tiny_data, tmp_path, tying, compute_dtype):
    path = train_tiny(tiny_data, tmp_path, tying, 42, tiny_config(training={"compute_dtype": compute_dtype}))
    numerics = json.loads(Recording(path).metadata["numerics"])
    assert (numerics["portable"], numerics["aten_cpu_capability"], numerics["mkl_cbwr"], numerics["onednn_matmul"]) == (
        True, "AVX2", "AVX2", False)
    assert payload_sha256(path) == GOLDEN[tying, compute_dtype]

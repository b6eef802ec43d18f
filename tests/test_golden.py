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

# (tying, compute_dtype) -> SHA-256 of the payload of config/test.yaml's seed-42 run (since grad_norms is recorded;
# every tensor recorded before it kept its bytes).
GOLDEN = {
    ("tied", "float32"): "fab70b51d84a1d8e3f62834397a96ea01f14ff35190fd20f5bae66968794353a",
    ("untied", "float32"): "46fec2f59cb8b9d7c0b453797c5f7c83184694e35ef4eb425409039fbc0ceb5d",
    ("tied", "bfloat16"): "c5e1df29641acce466e6d95297720d6559572c3f2d53bfce4a8b83ae01049dc9",
    ("untied", "bfloat16"): "bfc84f589114a7c044234622f13e2d7c991759436e7a5e5f891218b13e69a8d3",
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

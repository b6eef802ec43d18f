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

from flannel.recording import Recording
from flannel.training.numerics import x86_64

# (tying, compute_dtype) -> SHA-256 of the payload of config/test.yaml's seed-42 run (since grad_norms is recorded;
# every tensor recorded before it kept its bytes).
GOLDEN = {
    ("tied", "float32"): "e7bad0a84db116561ca2c9b44b2c5bf92ee7c3cfa89094bcaf8be33602969909",
    ("untied", "float32"): "2a2dc751ad738147a488454c5f38acb6c2d42ae9622bd68537dac30a4a4f4bd3",
    ("tied", "bfloat16"): "494763c267ee4feca1a9a465a726b06db22a21d5c18012fac6f633555fa35e77",
    ("untied", "bfloat16"): "82d02aa38f7ecaa323afba4c0254355026b7810e53cada807e83204ff166cc0f",
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

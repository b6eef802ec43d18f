"""Golden bytes: the tensor payload of the test config's runs (both tyings, both numeric paths), whose SHA-256
was written down on the machine that made them (an Intel Xeon with AVX-512 and AMX). With portable_numerics (the
default) the same run gives the same bytes on any x86-64 CPU with AVX2, Intel or AMD, so one hash per case holds
on every such CPU; a failure on one of them means a kernel choice the portable mode does not pin yet.

The payload is every byte after the safetensors header: all tensors. The header is left out because it names
package versions (numpy and Python are not pinned); its numerics entry is checked instead.
"""

from __future__ import annotations

import json

import pytest
from helpers import payload_sha256, tiny_config, train_tiny

from flannel.recording import Recording
from flannel.training.numerics import x86_64

# (tying, compute_dtype) -> SHA-256 of the payload of config/test.yaml's seed-42 run. The fast path's (float32)
# since its products left MKL (flannel.kernels); the faithful path's (bf16) are older, and unchanged by that.
GOLDEN = {
    ("tied", "float32"): "ef7ee3151f38239ddc38133c6ad5db547437ffcf988e18d1f178808a973fa523",
    ("untied", "float32"): "1629675636f64ece123e7bcac6aadd06be6c8141ffead6dde5d45cc7531ee93b",
    ("tied", "bfloat16"): "494763c267ee4feca1a9a465a726b06db22a21d5c18012fac6f633555fa35e77",
    ("untied", "bfloat16"): "82d02aa38f7ecaa323afba4c0254355026b7810e53cada807e83204ff166cc0f",
}


@pytest.mark.skipif(not x86_64(), reason="the portable numerics pin x86-64 kernels")
@pytest.mark.parametrize("tying, compute_dtype", list(GOLDEN), ids=[f"{t}-{d}" for t, d in GOLDEN])
def test_run_bytes_equal_the_golden_hash(tiny_data, tmp_path, tying, compute_dtype):
    path = train_tiny(tiny_data, tmp_path, tying, 42, tiny_config(training={"compute_dtype": compute_dtype}))
    numerics = json.loads(Recording(path).metadata["numerics"])
    assert (numerics["portable"], numerics["aten_cpu_capability"], numerics["onednn_matmul"]) == (True, "AVX2", False)
    assert numerics["step_kernels"] == "flannel.kernels; numpy's OpenBLAS Haswell, 1 thread"
    assert payload_sha256(path) == GOLDEN[tying, compute_dtype]

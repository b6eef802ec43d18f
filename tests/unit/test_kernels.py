"""The training step's vendor-independent float32 kernels (flannel.kernels): what they compute on hand-built
inputs, what they refuse, and that MKL, whose code path follows the CPU's vendor, reaches no byte of a run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import python_env, tiny_config
from test_golden import GOLDEN

from flannel.errors import TrainingError
from flannel.kernels import PortableKernels, ieee_sqrt
from flannel.training import numerics as numerics_module
from flannel.training.numerics import openblas_core, x86_64


def test_products_are_numpys_and_keep_torchs_shapes():
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(shape, generator=generator) for shape in ((5, 7), (7, 3), (3,)))
    batch_a, batch_b = torch.randn(4, 5, 7, generator=generator), torch.randn(4, 7, 3, generator=generator)
    with PortableKernels():
        mm, addmm, bmm = a @ b, torch.addmm(c, a, b, beta=0.5, alpha=2.0), torch.bmm(batch_a, batch_b)
        linear = torch.nn.functional.linear(batch_a, b.T)  # a 3-D input folds into one mm
    assert torch.equal(mm, torch.from_numpy(a.numpy() @ b.numpy()))
    assert torch.equal(addmm, torch.from_numpy(a.numpy() @ b.numpy()) * 2.0 + c * 0.5)
    assert torch.equal(bmm, torch.from_numpy(np.matmul(batch_a.numpy(), batch_b.numpy())))
    assert linear.shape == (4, 5, 3) and torch.allclose(linear, torch.from_numpy(batch_a.numpy() @ b.numpy()), atol=1e-6)


def test_gradients_flow_through_the_products():
    weight = torch.randn(3, 4, requires_grad=True, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(2))
    with PortableKernels():
        (x @ weight.T).sum().backward()
    assert torch.equal(weight.grad, x.sum(0).expand(3, 4))


def test_sqrt_is_the_correctly_rounded_one():
    # float32 neighbours around exact squares and values whose root lies near a rounding tie
    v = torch.tensor([0.0, 1.0, 2.0, 4.1636130987399156e-08, 2.944569246210449e-07, 1e-38, 3.4e38, 0.25])
    exact = torch.tensor([float(np.float32(np.sqrt(np.float64(x)))) for x in v.tolist()])
    assert torch.equal(ieee_sqrt(v), exact)
    with PortableKernels():
        assert torch.equal(v.sqrt(), exact)
    assert ieee_sqrt(v.to(torch.bfloat16)).dtype == torch.bfloat16  # other dtypes take torch's own


def test_tanh_is_within_one_float32_ulp_of_the_float64_answer():
    x = torch.linspace(-12, 12, 100001)
    with PortableKernels():
        y = torch.tanh(x)
    reference = torch.tanh(x.double())
    ulp = torch.from_numpy(np.spacing(np.abs(reference.float().numpy())))
    assert y.dtype == torch.float32 and ((y.double() - reference).abs() <= ulp.double()).all()


def test_other_mkl_backed_float32_operators_are_refused_and_bf16_passes():
    x = torch.rand(8)
    with PortableKernels():
        with pytest.raises(TrainingError, match=r"aten.exp.default would run MKL's vendor-specific float32 kernel"):
            torch.exp(x)
        with pytest.raises(TrainingError, match=r"aten.mv.default"):
            torch.mv(torch.rand(3, 8), x)
        assert torch.exp(x.to(torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.skipif(not x86_64(), reason="OpenBLAS core types are x86's")
def test_numpys_openblas_is_pinned_to_the_haswell_kernels():
    assert openblas_core() == "Haswell"


TRAIN_UNDER_MKL_BRANCH = """
import hashlib, json, struct, sys
from pathlib import Path
import flannel.training.numerics as numerics
numerics.PORTABLE_ENVIRONMENT["MKL_CBWR"] = sys.argv[1]
numerics.pin_cpu_kernels(True)
from flannel.data import tokens
from flannel.training.loop import Run, train_run
folder, out = Path(sys.argv[2]), Path(sys.argv[3])
config = json.loads(sys.argv[4])
ids = tokens.load_token_ids(folder / "token_ids.safetensors", config["model"]["vocab_size"])
masks = tokens.load_masks(folder / "live_dead_tokens.safetensors")
hashes = {}
for tying in ("tied", "untied"):
    path = out / f"{tying}.safetensors"
    train_run(config, Run(tying, 42), ids, masks, path)
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + size)
        hashes[tying] = hashlib.sha256(handle.read()).hexdigest()
print(json.dumps(hashes))
"""


@pytest.mark.skipif(not x86_64(), reason="MKL's code-path branches are x86's")
@pytest.mark.parametrize("settings", [{"compute_dtype": "float32"}, {"optimizer_state_dtype": "float32"}],
                         ids=["fast path", "float32 moments"])
def test_no_mkl_code_path_changes_a_byte(tiny_data, tmp_path, settings):
    """Under each MKL branch (Intel honours all three; AMD honours COMPATIBLE only and runs its own code for
    the others), the same payloads: MKL computes nothing of the run, so its vendor dispatch cannot matter."""
    config = tiny_config(training=settings)
    found = {}
    for branch in ("AVX2", "AVX512", "COMPATIBLE"):
        out = tmp_path / branch
        out.mkdir()
        result = subprocess.run([sys.executable, "-c", TRAIN_UNDER_MKL_BRANCH, branch, str(tiny_data["folder"]), str(out),
                                 json.dumps(config)], env=python_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        found[branch] = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["AVX2"] == found["AVX512"] == found["COMPATIBLE"], found
    if settings == {"compute_dtype": "float32"}:
        assert found["AVX2"] == {tying: GOLDEN[tying, "float32"] for tying in ("tied", "untied")}


def test_the_header_names_the_cpu_vendor_and_the_step_kernels(tiny_runs):
    from flannel.recording import Recording

    recording = Recording(tiny_runs[("tied", 42)])
    numerics = json.loads(recording.metadata["numerics"])
    assert numerics["step_kernels"].startswith("flannel.kernels; numpy's OpenBLAS Haswell")
    assert "Intel or AMD" in json.loads(recording.metadata["hardware"])["cpu"]  # portable: no vendor in the bytes
    assert numerics_module.hardware(torch.device("cpu"))["cpu_vendor"] in ("GenuineIntel", "AuthenticAMD")


def test_check_7_names_a_cpu_vendor_difference_first():
    from types import SimpleNamespace

    from flannel.sanity.checks import provenance_differences

    def header(vendor):
        return SimpleNamespace(metadata={"numerics": "{}", "device": "cpu", "versions": "{}",
                                         "hardware": json.dumps({"cpu_vendor": vendor, "cpu": "x"})})

    assert provenance_differences(header("GenuineIntel"), header("AuthenticAMD")) == [
        "CPU vendors (GenuineIntel vs AuthenticAMD)", "hardware"]
    assert provenance_differences(header("AuthenticAMD"), header("AuthenticAMD")) == []


@pytest.mark.skipif(not x86_64(), reason="the pins are x86's")
def test_numpy_loaded_before_the_pins_is_refused_naming_the_key():
    """OpenBLAS reads its core type when numpy loads: after that the pin could no longer take effect."""
    code = "import numpy; from flannel.training.numerics import pin_cpu_kernels; pin_cpu_kernels(True)"
    env = {key: value for key, value in python_env().items() if not key.startswith("OPENBLAS_")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert ("ConfigError: config key 'training.portable_numerics': torch or numpy was imported before the CPU kernels "
            "were pinned") in result.stderr

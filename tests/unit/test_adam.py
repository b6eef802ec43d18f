"""The Adam accounting (flannel.analysis.adam) with known answers: a 3-step AdamW run replayed element by element, a
hand-built recording of it, lost updates and stuck second moments on hand-picked values, and sanity check 9 on
tiny real runs, passing and failing on a flipped byte of a recorded moment."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import flip_byte, python_env, tiny_config, train_tiny, write_recording

from flannel.analysis import adam
from flannel.analysis.rows import scheduled_lr
from flannel.config import sanity_settings
from flannel.errors import ReproducibilityError
from flannel.recording import Recording
from flannel.sanity import checks, report

LRS = (0.01, 0.006, 0.002)  # a different LR at every step, as under the linear schedule
BETAS, EPS = (0.9, 0.999), 1e-8


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality of two tensors (of any shape, scalars included) of one dtype."""
    return a.dtype == b.dtype and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def three_steps(dtype: torch.dtype, max_norm: float | None, weight_decay: float = 0.0):
    """A [4, 3] parameter trained 3 steps by torch's AdamW (foreach=False), clipped like the training loop:
    per step the weights, moments, pre-clip grad and pre-clip norm, with record 0 the initial state."""
    generator = torch.Generator().manual_seed(0)
    param = torch.nn.Parameter((torch.randn(4, 3, generator=generator) * 0.02).to(dtype))
    optimizer = torch.optim.AdamW([param], lr=LRS[0], betas=BETAS, eps=EPS, weight_decay=weight_decay, foreach=False)
    zero = torch.zeros_like(param)
    records = {"weights": [param.detach().clone()], "momentum": [zero], "variance": [zero], "grads": [zero], "norms": [math.nan]}
    for step, lr in enumerate(LRS, start=1):
        optimizer.param_groups[0]["lr"] = lr
        param.grad = (torch.randn(4, 3, generator=generator) * step).to(dtype)
        param.grad[0, 0] = 0.0  # one element with no gradient at all
        grad = param.grad.clone()
        norm = (torch.nn.utils.clip_grad_norm_([param], max_norm) if max_norm is not None
                else torch.nn.utils.get_total_norm([param.grad]))
        optimizer.step()
        state = optimizer.state[param]
        for name, value in (("weights", param), ("momentum", state["exp_avg"]), ("variance", state["exp_avg_sq"]),
                            ("grads", grad)):
            records[name].append(value.detach().clone())
        records["norms"].append(norm.item())
    return records


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("max_norm", [0.5, None], ids=["clipped", "unclipped"])
def test_three_adamw_steps_replay_element_by_element(dtype, max_norm):
    weight_decay = 0.1 if dtype == torch.float32 else 0.0
    r = three_steps(dtype, max_norm, weight_decay)
    for t in range(1, 4):
        clip = adam.clip_factor(r["norms"][t], max_norm, dtype)
        if max_norm is not None:
            assert clip.item() < 1.0  # the gradients are large: clipping is exercised
        m, v = adam.replay_moments(r["momentum"][t - 1], r["variance"][t - 1], r["grads"][t], beta1=BETAS[0],
                                   beta2=BETAS[1], clip=clip)
        w = adam.replay_weights(r["weights"][t - 1], r["momentum"][t], r["variance"][t], lr=LRS[t - 1], step=t,
                                beta1=BETAS[0], beta2=BETAS[1], eps=EPS, weight_decay=weight_decay)
        for rebuilt, recorded in ((m, r["momentum"][t]), (v, r["variance"][t]), (w, r["weights"][t])):
            assert rebuilt.dtype == dtype
            for i in range(4):
                for j in range(3):
                    assert same_bits(rebuilt[i, j], recorded[i, j]), (t, i, j)


def test_replay_in_float64_instead_of_the_parameter_dtype_does_not_close():
    # The rounding of each intermediate matters: the same formula in float64, rounded once, misses some bits.
    r = three_steps(torch.bfloat16, None)
    misses = 0
    for t in range(1, 4):
        lr, b1, b2 = LRS[t - 1], *BETAS
        exact = r["weights"][t - 1].double() - lr / (1 - b1**t) * r["momentum"][t].double() / (
            (r["variance"][t].double() / (1 - b2**t)).sqrt() + EPS)
        misses += int((exact.to(torch.bfloat16) != r["weights"][t]).sum())
        misses += int((r["momentum"][t - 1].double() * b1 + (1 - b1) * r["grads"][t].double()).to(torch.bfloat16).ne(r["momentum"][t]).sum())
    assert misses > 0


def test_clip_factor_is_the_one_clip_grad_norm_applies():
    grad = torch.tensor([[3.0, 4.0]], dtype=torch.bfloat16)
    param = torch.nn.Parameter(torch.zeros_like(grad))
    param.grad = grad.clone()
    norm = torch.nn.utils.clip_grad_norm_([param], 1.0)
    assert norm.item() == 5.0
    assert same_bits(grad * adam.clip_factor(5.0, 1.0, torch.bfloat16), param.grad)
    assert adam.clip_factor(0.5, 1.0, torch.bfloat16).item() == 1.0  # never amplifies
    assert adam.clip_factor(5.0, None, torch.bfloat16) is None


# ---- a hand-built recording of the 3-step run ---------------------------------------------------------------

TRAINING = {"learning_rate": 0.01, "lr_schedule": "linear", "warmup_steps": 0, "steps": 3, "adam_beta1": BETAS[0],
            "adam_beta2": BETAS[1], "adam_epsilon": EPS, "weight_decay": 0.0, "max_grad_norm": 0.5,
            "param_dtype": "bfloat16"}


def recorded_three_steps(path, dtype=torch.bfloat16):
    """The 3-step run as a tied recording (rows 0 and 1 dead), at the LRs of TRAINING's linear schedule."""
    training = {**TRAINING, "param_dtype": "bfloat16" if dtype == torch.bfloat16 else "float32"}
    lrs = [scheduled_lr(t, training) for t in (1, 2, 3)]
    assert lrs == pytest.approx([0.01, 0.01 * 2 / 3, 0.01 / 3])
    generator = torch.Generator().manual_seed(1)
    param = torch.nn.Parameter((torch.randn(4, 3, generator=generator) * 0.02).to(dtype))
    optimizer = torch.optim.AdamW([param], lr=lrs[0], betas=BETAS, eps=EPS, weight_decay=0.0, foreach=False)
    zero = torch.zeros_like(param)
    series = {"embeddings": [param.detach().clone()], "momentum": [zero], "variance": [zero], "grads": [zero]}
    norms = [math.nan]
    for step, lr in enumerate(lrs, start=1):
        optimizer.param_groups[0]["lr"] = lr
        param.grad = (torch.randn(4, 3, generator=generator) * step).to(dtype)
        series["grads"].append(param.grad.clone())
        norms.append(torch.nn.utils.clip_grad_norm_([param], TRAINING["max_grad_norm"]).item())
        optimizer.step()
        state = optimizer.state[param]
        series["embeddings"].append(param.detach().clone())
        series["momentum"].append(state["exp_avg"].clone())
        series["variance"].append(state["exp_avg_sq"].clone())
    matrices = {name: torch.stack(values) for name, values in series.items()}
    return write_recording(path, matrices, tied=True, dead_indices=[0, 1], vocab_size=4, losses=(math.nan, 1, 1, 1),
                           steps=(0, 1, 2, 3), training=training,
                           extra={"grad_norms": torch.tensor(norms, dtype=torch.float32)})


def test_a_recorded_three_step_run_is_rebuilt_bitwise(tmp_path):
    table = adam.adam_accounting(recorded_three_steps(tmp_path / "three.safetensors")).set_index("step")
    bitwise = table[["W_weights_bitwise", "W_momentum_bitwise", "W_variance_bitwise"]]
    assert bitwise.loc[0].isna().all()
    assert (bitwise.loc[1:] == 1.0).all().all()
    assert (table.loc[1:, "clip"] < 1).all()
    assert table.loc[1:, "lr"].tolist() == pytest.approx([0.01, 0.01 * 2 / 3, 0.01 / 3])


def test_a_flipped_moment_fails_check_9_naming_step_and_tensor(tmp_path):
    path = recorded_three_steps(tmp_path / "three.safetensors")
    flip_byte(path, "momentum", 2)
    entry = checks.check_adam_replay({"tied seed 1": (adam.adam_accounting(path), True)}, {"tied seed 1": "three.safetensors"})
    assert entry["passed"] is False and entry["number"] == 9 and entry["reproducibility"]
    assert entry["rows"][0]["first_failure"] == "momentum at step 2"
    assert "does not close at step 2 in tensor 'momentum'" in entry["failures"][0]


def test_a_bf16_recording_of_a_float32_optimizer_state_is_not_applicable(tmp_path):
    path = recorded_three_steps(tmp_path / "three.safetensors")
    training = {**TRAINING, "optimizer_state_dtype": "float32"}
    other = write_recording(tmp_path / "mislabelled.safetensors", {k: Recording(path).tensor(k) for k in
                            ("embeddings", "momentum", "variance", "grads")}, tied=True, dead_indices=[0, 1],
                            vocab_size=4, losses=(math.nan, 1, 1, 1), steps=(0, 1, 2, 3), training=training)
    assert adam.replayable(Recording(other)) == "recorded in bfloat16, the optimizer state is float32"
    entry = checks.check_adam_replay({"r": (adam.adam_accounting(other), True)}, {"r": "mislabelled"})
    assert entry["passed"] is None
    assert adam.adam_accounting(other)["W_weights_bitwise"].isna().all()


# ---- lost updates and stuck second moments, hand-picked ------------------------------------------------------


def test_lost_updates_and_stuck_second_moments_on_known_values(tmp_path):
    # Step 1 with m = (1 - b1) g, v = (1 - b2) g^2: the exact update is -lr sign(g) = -1e-3 per element. Row 0
    # (dead) sits at 1.0, where half an ulp of bf16 is 3.9e-3: the update is lost. Row 1 (dead) sits at 0.01
    # and moves. Row 2 (live) has g = 0 in its first element (no update) and sits at 1.0 elsewhere (lost).
    w0 = torch.tensor([[1.0, 1.0], [0.01, 0.01], [0.5, 1.0]], dtype=torch.bfloat16)
    g = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.bfloat16)
    training = {**TRAINING, "learning_rate": 1e-3, "steps": 1, "max_grad_norm": None}
    m1 = adam.replay_moments(torch.zeros_like(w0), torch.zeros_like(w0), g, beta1=BETAS[0], beta2=BETAS[1], clip=None)
    w1 = adam.replay_weights(w0, *m1, lr=1e-3, step=1, beta1=BETAS[0], beta2=BETAS[1], eps=EPS)
    assert torch.equal(w1[0], w0[0]) and not torch.equal(w1[1], w0[1])
    # Step 2: v = 1.0 everywhere. bf16(1.0 x 0.999) == 1.0, so v cannot decrease; g = 0 would need it to.
    ones = torch.ones_like(w0)
    matrices = {"embeddings": torch.stack([w0, w1, w1]), "momentum": torch.stack([torch.zeros_like(w0), m1[0], m1[0]]),
                "variance": torch.stack([torch.zeros_like(w0), m1[1], ones]), "grads": torch.stack([0 * g, g, 0 * g])}
    path = write_recording(tmp_path / "lost.safetensors", matrices, tied=True, dead_indices=[0, 1], vocab_size=3,
                           losses=(math.nan, 1, 1), steps=(0, 1, 2), training=training)
    table = adam.adam_accounting(path).set_index("step")
    assert table.loc[1, "W_dead_update_nonzero"] == 1.0
    assert table.loc[1, "W_dead_lost_update"] == 0.5  # row 0's two elements of the dead rows' four
    assert table.loc[1, "W_live_update_nonzero"] == 0.5  # the element with g = 0 has m = 0: no update
    assert table.loc[1, "W_live_lost_update"] == 0.5
    assert math.isnan(table.loc[1, "W_dead_v_cannot_decrease"])  # v_0 = 0 everywhere: nothing to decrease
    assert table.loc[2, "W_dead_v_cannot_decrease"] == 1.0
    assert table.loc[2, "W_live_v_cannot_decrease"] == 1.0
    assert table.loc[1, "W_weights_bitwise"] == 1.0 and table.loc[1, "W_momentum_bitwise"] == 1.0
    # In float32 the decay is kept: 1.0 x 0.999 < 1.0.
    assert (torch.ones(2) * 0.999 < 1).all() and (torch.ones(2, dtype=torch.bfloat16).mul(0.999) == 1).all()


# ---- sanity check 9 on real tiny runs ---------------------------------------------------------------------------


def test_check_9_passes_on_tied_and_untied_tiny_runs(tiny_data, tiny_runs, tmp_path):
    made = report.sanity_report(sanity_settings(tiny_data["config"]), runs=tiny_runs, replicas={},
                                masks=tiny_data["folder"] / "live_dead_tokens.safetensors")
    entry = made["checks"]["adam_replay"]
    assert entry["passed"] is True, entry["summary"]
    assert {r["run"] for r in entry["rows"]} == {"tied seed 42", "tied seed 43", "untied seed 42"}
    assert all(r["replayed_steps"] == 20 and r["weights_min"] == r["momentum_min"] == r["variance_min"] == 1.0
               for r in entry["rows"])


@pytest.mark.parametrize("tying, key", [("tied", "variance"), ("untied", "momentum_W")])
def test_check_9_fails_the_verdict_on_a_corrupted_moment(tiny_data, tiny_runs, tmp_path, tying, key):
    copy = tmp_path / "seed42.safetensors"
    shutil.copyfile(tiny_runs[(tying, 42)], copy)
    flip_byte(copy, key, 7)
    made = report.sanity_report(sanity_settings(tiny_data["config"]), runs={(tying, 42): copy}, replicas={},
                                masks=tiny_data["folder"] / "live_dead_tokens.safetensors")
    assert made["checks"]["adam_replay"]["passed"] is False
    with pytest.raises(ReproducibilityError, match=rf"sanity check 9 \({tying} seed 42\).*at step 7 in tensor '{key}'"):
        report.enforce(made, True)


@pytest.mark.parametrize("overrides", [
    {"compute_dtype": "bfloat16"}, {"max_grad_norm": 0.05},
    # config/long.yaml's Thimble 8/9: weight decay on every parameter, bf16 throughout, constant LR, no clipping
    {"compute_dtype": "bfloat16", "weight_decay": 0.1, "lr_schedule": "constant", "max_grad_norm": None,
     "windows": "disjoint"},
], ids=["faithful-path", "clipped", "box_4-decayed"])
def test_replay_closes_on_the_faithful_path_and_under_clipping(tiny_data, tmp_path, overrides):
    path = train_tiny(tiny_data, tmp_path, "untied", 42, tiny_config(training=overrides))
    table = adam.adam_accounting(path)
    assert (table.filter(like="_bitwise").iloc[1:] == 1.0).all().all()
    if overrides.get("max_grad_norm"):
        assert (table["clip"].iloc[1:] < 1).all()
    assert (Recording(path).tensor("grad_norms")[1:] > 0).all()


def test_a_float32_optimizer_replays_when_recorded_in_float32(tiny_data, tmp_path):
    config = tiny_config(training={"param_dtype": "float32", "weight_decay": 0.1}, recording={"dtype": "float32"})
    table = adam.adam_accounting(train_tiny(tiny_data, tmp_path, "tied", 42, config))
    assert (table.filter(like="_bitwise").iloc[1:] == 1.0).all().all()
    assert table["W_live_v_decreased"].iloc[2:].max() > 0  # float32 keeps the decay: v does decrease


@pytest.mark.parametrize("tying", ["tied", "untied"])
def test_float32_moments_with_bf16_weights_replay_bitwise_and_decay(tiny_data, tmp_path, tying):
    config = tiny_config(training={"optimizer_state_dtype": "float32", "max_grad_norm": 0.05},
                         recording={"dtype": "float32"})
    recording = Recording(train_tiny(tiny_data, tmp_path, tying, 42, config))
    weights, variance = recording.matrix("embeddings", "W"), recording.matrix("variance", "W")
    assert recording.tensor(variance).dtype == torch.float32
    final = recording.record(weights, recording.n_records - 1)
    assert torch.equal(final, final.to(torch.bfloat16).float())  # the weights are bf16 values throughout
    table = adam.adam_accounting(recording.path)
    assert (table.filter(like="_bitwise").iloc[1:] == 1.0).all().all()
    assert table["W_live_v_decreased"].iloc[2:].max() > 0  # float32 moments decay again


# Sanity check 9's one failure at the demo scale (config/sweeps.yaml, float32_moments, tied seed 42): the element
# of W at (449, 0), step 80, and at (1071, 62), step 449, as recorded by training (float32 m and v, bf16 W).
REPLAY_CASES = [  # step, lr, W_(t-1), m_t, v_t, W_t
    (80, 0.000842, -0.00087738037109375, 0.0002299438783666119, 4.1636130987399156e-08, -0.00113677978515625),
    (449, 0.000104, -0.001739501953125, 0.0002977865224238485, 2.944569246210449e-07, -0.00177001953125),
]
REPLAY = """
import json, sys
import torch
from flannel.analysis.adam import replay_weights
found = []
for step, lr, w, m, v, _ in json.loads(sys.argv[1]):
    out = replay_weights(torch.tensor([w], dtype=torch.bfloat16), torch.tensor([m]), torch.tensor([v]), lr=lr, step=step,
                         beta1=0.9, beta2=0.999, eps=1e-8)
    found.append(out.item())
print(json.dumps(found))
"""


@pytest.mark.parametrize("mkl_branch", ["AVX2", "AVX512", "COMPATIBLE"])
def test_the_adam_replay_rebuilds_the_recorded_weight_under_any_mkl_branch(mkl_branch):
    """The replay's float32 sqrt was MKL's, whose rounding follows its code path: correct under AVX2, one ulp off
    under AVX-512 or COMPATIBLE for these v, and the accounting job (unpinned) ran another path than training.
    Either way the bf16 weight then rounded across a tie. Both sides now take the IEEE square root."""
    env = {**python_env(), "MKL_CBWR": mkl_branch}
    result = subprocess.run([sys.executable, "-c", REPLAY, json.dumps(REPLAY_CASES)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [case[-1] for case in REPLAY_CASES]

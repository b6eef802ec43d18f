"""Training runs: the recording's layout, the notebooks' invariants, and byte reproducibility."""

import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from helpers import ROOT, payload_sha256, python_env, tiny_config, train_tiny
from flannel.config import data_seed, run_config
from flannel.errors import TrainingError
from flannel.recording import Recording, RecordingError
from flannel.training import numerics
from flannel.training.loop import WorkingCopy, window_batches
from flannel.training.model import DTYPES, HMeanHook, build_model, parameter_counts

NOTEBOOK_MODEL = {"vocab_size": 10000, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 2, "init_scale": 0.02,
                  "attention": "sdpa"}
TIED_KEYS = {"recorded_steps", "embeddings", "grads", "momentum", "variance", "logits", "h_mean", "losses", "grad_norms"}
UNTIED_KEYS = {"recorded_steps", "embeddings_E", "embeddings_W", "grads_E", "grads_W", "momentum_E", "momentum_W",
               "variance_E", "variance_W", "logits", "h_mean", "losses", "grad_norms"}
SCALARS = {"init_scale", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "n_live", "n_dead", "tied_weights"}


def test_parameter_counts_of_the_notebook_model():
    assert parameter_counts(build_model(NOTEBOOK_MODEL, False, 42, torch.bfloat16)) == {
        "total": 1_388_288, "embedding_E": 640_000, "unembedding_W": 640_000, "other": 108_288}
    assert parameter_counts(build_model(NOTEBOOK_MODEL, True, 42, torch.bfloat16))["total"] == 748_288


@pytest.mark.parametrize("tying, keys", [("tied", TIED_KEYS), ("untied", UNTIED_KEYS)])
def test_keys_shapes_dtypes_and_record_count(tiny_runs, tiny_data, tying, keys):
    config = tiny_data["config"]
    steps, V, D = config["training"]["steps"], config["model"]["vocab_size"], config["model"]["n_embd"]
    tensors = load_file(str(tiny_runs[(tying, 42)]))
    assert keys | SCALARS | {"recorded_rows", "dead_indices"} == set(tensors)
    assert tensors["recorded_steps"].tolist() == list(range(steps + 1))
    for key in keys - {"recorded_steps", "logits", "h_mean", "losses", "grad_norms"}:
        assert tensors[key].shape == (steps + 1, V, D) and tensors[key].dtype == torch.bfloat16, key
    assert tensors["logits"].shape == (steps + 1, V) and tensors["logits"].dtype == torch.bfloat16
    assert tensors["h_mean"].shape == (steps + 1, D) and tensors["h_mean"].dtype == torch.float32
    assert tensors["h_mean"][1:].abs().sum(dim=1).min() > 0
    assert tensors["losses"].shape == (steps + 1,) and tensors["losses"].dtype == torch.float32
    assert tensors["grad_norms"].shape == (steps + 1,) and tensors["grad_norms"].dtype == torch.float32
    assert math.isnan(tensors["grad_norms"][0].item()) and (tensors["grad_norms"][1:] > 0).all()
    assert tensors["tied_weights"].item() == (tying == "tied")
    assert tensors["n_dead"].item() == len(tiny_data["masks"]["dead_indices"])
    assert torch.equal(tensors["dead_indices"], tiny_data["masks"]["dead_indices"])


def test_record_zero_is_the_initial_state(tiny_runs):
    tensors = load_file(str(tiny_runs[("untied", 42)]))
    assert math.isnan(tensors["losses"][0].item())
    for key in ("grads_E", "grads_W", "momentum_E", "momentum_W", "variance_E", "variance_W", "logits", "h_mean"):
        assert not tensors[key][0].any(), key
    assert torch.equal(tensors["embeddings_E"][0], tensors["embeddings_W"][0])


def test_untied_dead_rows_of_E_never_move_and_get_exactly_zero_grad(tiny_runs, tiny_data):
    dead = tiny_data["masks"]["dead_indices"]
    tensors = load_file(str(tiny_runs[("untied", 42)]))
    E, grads_E, W = tensors["embeddings_E"][:, dead], tensors["grads_E"][:, dead], tensors["embeddings_W"][:, dead]
    assert torch.equal(E, E[:1].expand_as(E))
    assert not grads_E.any()
    assert not torch.equal(W[-1], W[0])  # dead rows of W do get pushed (the softmax backscatter)
    assert tensors["grads_W"][1:, dead].abs().sum(dim=(1, 2)).gt(0).all()


def test_loss_at_step_one_is_near_ln_V(tiny_runs, tiny_data):
    V = tiny_data["config"]["model"]["vocab_size"]
    for path in tiny_runs.values():
        assert abs(load_file(str(path))["losses"][1].item() - math.log(V)) < 0.2


def test_bf16_regime_layernorm_gains_never_move_and_variance_never_decreases(tiny_runs):
    rows = [line.split("\t") for line in tiny_runs[("tied", 42)].with_suffix(".moved.tsv").read_text().splitlines()]
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    gains = [name for name in table if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))]
    assert gains and all(float(table[name]["fraction_changed"]) == 0.0 for name in gains)
    assert all(float(row["fraction_variance_ever_decreased"]) == 0.0 for row in table.values())
    assert float(table["transformer.wte.weight"]["fraction_changed"]) > 0.5  # tied: E is W, listed once


def test_fp32_variance_does_decrease(tiny_data, tmp_path):
    config = tiny_config(training={"param_dtype": "float32", "steps": 10})
    path = train_tiny(tiny_data, tmp_path, "tied", 42, config)
    rows = path.with_suffix(".moved.tsv").read_text().splitlines()
    column = rows[0].split("\t").index("fraction_variance_ever_decreased")
    assert any(float(row.split("\t")[column]) > 0 for row in rows[1:])


def test_header_metadata_has_config_versions_and_digests_but_no_timestamps(tiny_runs, tiny_data):
    with safe_open(str(tiny_runs[("tied", 42)]), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["complete"] == "true" and metadata["tying"] == "tied" and metadata["seed"] == "42"
    assert json.loads(metadata["config"])["training"] == run_config(tiny_data["config"])["training"]
    assert set(json.loads(metadata["versions"])) >= {"torch", "transformers", "safetensors", "flannel"}
    assert len(metadata["state_sha256_initial"]) == 64 and len(metadata["state_sha256_final"]) == 64
    assert metadata["state_sha256_initial"] != metadata["state_sha256_final"]
    assert "2026" not in json.dumps(metadata) and "/tmp" not in json.dumps(metadata)


def test_record_every_and_row_sampling(tiny_data, tmp_path):
    config = tiny_config(training={"steps": 10}, recording={"record_every": 5, "rows": "dead_and_sample",
                                                             "live_sample": 7, "quantities": ["embeddings", "grads"]})
    recording = Recording(train_tiny(tiny_data, tmp_path, "untied", 42, config))
    assert recording.steps() == [0, 5, 10]
    dead = tiny_data["masks"]["dead_indices"]
    rows = recording.tensor("recorded_rows")
    assert rows.numel() == dead.numel() + 7 and set(dead.tolist()) <= set(rows.tolist())
    assert torch.equal(rows, rows.sort().values)
    assert recording.keys == {"recorded_steps", "recorded_rows", "embeddings_E", "embeddings_W", "grads_E", "grads_W",
                              "losses", "grad_norms", "dead_indices"} | SCALARS
    assert recording.shape("embeddings_W") == [3, rows.numel(), config["model"]["n_embd"]]


def test_a_rerun_and_a_run_after_other_seeds_give_the_same_bytes(tiny_runs, tiny_data, tmp_path):
    # tiny_runs trained tied 42, tied 43 and untied 42 in this process; tied 42 again, after all of them:
    again = train_tiny(tiny_data, tmp_path, "tied", 42)
    assert again.read_bytes() == tiny_runs[("tied", 42)].read_bytes()
    assert again.read_bytes() != tiny_runs[("tied", 43)].read_bytes()


def test_a_fresh_process_gives_the_same_bytes(tiny_runs, tiny_data, tmp_path):
    code = (
        "import sys;"
        "from flannel.training.numerics import pin_cpu_kernels; pin_cpu_kernels(True); import torch;"
        "from helpers import tiny_config; from flannel.training.loop import Run, train_run;"
        "from safetensors.torch import load_file; from safetensors.numpy import load_file as load_np;"
        "ids = torch.from_numpy(load_np(sys.argv[2])['token_ids'].astype('int64'));"
        "train_run(tiny_config(), Run('untied', 42), ids, load_file(sys.argv[3]), sys.argv[4])"
    )
    out = tmp_path / "fresh.safetensors"
    folder = tiny_data["folder"]
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder / "token_ids.safetensors"),
                    str(folder / "live_dead_tokens.safetensors"), str(out)], check=True, capture_output=True,
                   env=python_env())
    assert out.read_bytes() == tiny_runs[("untied", 42)].read_bytes()


def test_faithful_path_runs_in_bf16_and_differs_from_the_fast_path(tiny_data, tmp_path):
    faithful = train_tiny(tiny_data, tmp_path / "faithful", "tied", 42, tiny_config(training={"steps": 3, "compute_dtype": "bfloat16"}))
    fast = train_tiny(tiny_data, tmp_path / "fast", "tied", 42, tiny_config(training={"steps": 3}))
    a, b = load_file(str(faithful)), load_file(str(fast))
    assert torch.equal(a["embeddings"][0], b["embeddings"][0])
    assert not torch.equal(a["embeddings"][3], b["embeddings"][3])
    assert (a["embeddings"][3].float() - b["embeddings"][3].float()).abs().max() < 0.01


def test_non_finite_loss_stops_naming_the_step_and_leaves_no_file(tiny_data, tmp_path):
    config = tiny_config(model={"init_scale": 1e38})  # bf16 overflows to inf at init: the first loss is NaN
    with pytest.raises(TrainingError, match=r"tied seed 42: loss is nan at step 1"):
        train_tiny(tiny_data, tmp_path, "tied", 42, config)
    assert list(tmp_path.rglob("*")) == [tmp_path / "tied"]


def test_an_unfinished_recording_is_refused(tiny_data, tmp_path):
    from flannel.training.recorder import RunRecorder

    recorder = RunRecorder(tmp_path / "r.safetensors", tied=True, rows=torch.arange(4), vocab_size=4, n_embd=2,
                           n_records=3, quantities=["embeddings"], dtype=torch.bfloat16,
                           scalars={"tied_weights": torch.tensor(True)}, metadata={})
    partial = tmp_path / "r.safetensors.partial"
    assert partial.exists() and not (tmp_path / "r.safetensors").exists()
    with pytest.raises(RecordingError, match="incomplete recording"):
        Recording(partial)
    with pytest.raises(RecordingError, match="1 records written, 3 expected"):
        recorder.record(0, {}, None, None, None, float("nan"))
        recorder.finish("0" * 64)


def _write_records(path, background: bool) -> bytes:
    from flannel.recording import StreamingSafetensors

    g = torch.Generator().manual_seed(0)
    specs = {"embeddings": (torch.bfloat16, (5, 7, 3)), "losses": (torch.float32, (5,))}
    writer = StreamingSafetensors(path, specs, {"k": "v"}, background=background)
    for index in range(5):
        weights = torch.randn(7, 3, generator=g)
        writer.write("embeddings", weights, index)  # float32 in, bf16 stored: the cast happens in either path
        weights.zero_()  # the caller reuses its buffer at once; the background copy must not see that
        writer.write("losses", torch.tensor(float(index)), index)
    writer.finish({})
    return path.read_bytes()


def test_background_writes_give_the_bytes_of_writing_in_line(tmp_path):
    assert _write_records(tmp_path / "bg.safetensors", True) == _write_records(tmp_path / "inline.safetensors", False)


def test_an_error_on_the_writer_thread_reaches_the_training_thread():
    from flannel.background import BackgroundWriter

    def full_disk(name, host, offset):
        raise RecordingError("run.safetensors.partial: cannot write the recording (No space left on device)")

    writer = BackgroundWriter(full_disk, depth=2)
    writer.put(("losses", torch.zeros(4), 0), [None])
    with pytest.raises(RecordingError, match="No space left on device"):
        writer.close()


def test_grad_norms_are_the_pre_clip_global_norm(tiny_data, tmp_path):
    # With clipping at 0.05 every step is clipped, so a norm after clipping would read 0.05; the recorded one is
    # the global norm over every parameter before clipping, also where no clipping is configured.
    clipped = Recording(train_tiny(tiny_data, tmp_path / "a", "tied", 42, tiny_config(training={"steps": 3, "max_grad_norm": 0.05})))
    free = Recording(train_tiny(tiny_data, tmp_path / "b", "tied", 42, tiny_config(training={"steps": 3, "max_grad_norm": None})))
    assert (clipped.tensor("grad_norms")[1:] > 0.05).all()
    assert clipped.tensor("grad_norms")[1].item() == free.tensor("grad_norms")[1].item()  # same first step


# ---- the two roles of a seed ---------------------------------------------------------------------------------


def test_a_run_is_its_resolved_seeds_whatever_its_own_seed(tiny_data, tmp_path):

    plain = train_tiny(tiny_data, tmp_path / "plain", "tied", 42)
    named = train_tiny(tiny_data, tmp_path / "named", "tied", 43, tiny_config(training={"init_seed": 42, "data_seed": 42}))
    assert payload_sha256(plain) == payload_sha256(named)
    assert Recording(named).metadata["init_seed"] == Recording(named).metadata["data_seed"] == "42"


def test_disjoint_windows_cut_the_corpus_into_consecutive_chunks_once_per_epoch():
    # 100 tokens, windows of 10: chunks at 0, 10, ..., 90; batches of 3 take 9 of them per epoch.
    batches = window_batches(100, 9, 3, seed=5, windows="disjoint")
    epoch = torch.cat([next(batches) for _ in range(3)]).tolist()
    assert len(set(epoch)) == 9 and set(epoch) < set(range(0, 100, 10))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(5)) * 10
    assert epoch == order[:9].tolist()  # the last partial batch dropped; then a new permutation
    assert next(batches).tolist() != order[9:].tolist() + epoch[:2]
    # every_offset, the default, is the plain permutation of all 91 offsets.
    offsets = window_batches(100, 9, 3, seed=5)
    assert next(offsets).tolist() == torch.randperm(91, generator=torch.Generator().manual_seed(5))[:3].tolist()


@pytest.mark.parametrize("fixed, varied", [("init_seed", "data_seed"), ("data_seed", "init_seed")])
def test_one_seed_fixed_the_other_varied(tiny_data, tmp_path, fixed, varied):
    runs = [Recording(train_tiny(tiny_data, tmp_path / str(seed), "tied", seed, tiny_config(training={fixed: 7})))
            for seed in (42, 43)]
    same_start = torch.equal(runs[0].record("embeddings", 0), runs[1].record("embeddings", 0))
    configs = [tiny_config(training={fixed: 7}) for _ in runs]
    training = configs[0]["training"]
    batches = [next(window_batches(tiny_data["ids"].numel(), training["seq_len"], training["batch_size"],
                                   data_seed(c, seed))) for c, seed in zip(configs, (42, 43))]
    assert same_start == (fixed == "init_seed")
    assert torch.equal(*batches) == (fixed == "data_seed")
    # Different batches or different starts: the runs part at step 1 either way.
    assert runs[0].tensor("losses")[1] != runs[1].tensor("losses")[1]


@pytest.mark.parametrize("compute_dtype", ["bfloat16", "float32"])
def test_h_mean_of_a_model_whose_final_layernorm_output_is_known(tiny_data, compute_dtype):
    """ln_f with weight 0 and bias b outputs b at every position, so h_mean is b exactly (4 x 8 positions: a
    power of two, so the float32 mean of equal values is exact), on either path's module."""
    model = build_model(tiny_data["config"]["model"], True, 42, torch.bfloat16)
    bias = torch.arange(16, dtype=torch.float32).sub(7.5).mul(0.125)  # bf16-exact
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(bias)
    worker = WorkingCopy(model, DTYPES[compute_dtype], torch.bfloat16).worker
    hook = HMeanHook(worker)
    assert hook.value is None
    worker(input_ids=torch.randint(0, 400, (4, 8), generator=torch.Generator().manual_seed(0)))
    assert hook.value.dtype == torch.float32 and torch.equal(hook.value, bias)


@pytest.mark.parametrize("tying", ["tied", "untied"])
def test_recorded_h_mean_is_the_step_one_forward_pass_averaged(tiny_runs, tiny_data, tying):
    """Record 1's h_mean, rebuilt outside the training loop: the initial model's fp32 working copy (the fast
    path) on step 1's batch, its final LayerNorm output averaged in float32; bitwise the recorded one."""
    config = tiny_data["config"]
    training, seq_len = config["training"], config["training"]["seq_len"]
    model = build_model(config["model"], tying == "tied", 42, torch.bfloat16)
    worker = WorkingCopy(model, torch.float32, torch.bfloat16).worker
    hook = HMeanHook(worker)
    starts = next(window_batches(tiny_data["ids"].numel(), seq_len, training["batch_size"], data_seed(config, 42)))
    window = tiny_data["ids"][starts[:, None] + torch.arange(seq_len + 1)]
    with numerics.gradient_kernels(training, torch.device("cpu"), torch.float32):
        worker(input_ids=window[:, :-1])
    assert torch.equal(Recording(tiny_runs[(tying, 42)]).record("h_mean", 1), hook.value)

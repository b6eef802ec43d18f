"""Bad input, faults and interruptions: a one-line error naming the file or key, and nothing at an output
path that a reader could take for complete."""

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, copy_repo, python_env, snakemake, tiny_config, train_tiny
from flannel.recording import Recording, RecordingError


def test_truncated_recording_is_refused(tiny_runs, tmp_path):
    broken = tmp_path / "truncated.safetensors"
    broken.write_bytes(tiny_runs[("tied", 42)].read_bytes()[:-1000])
    with pytest.raises(RecordingError, match=r"truncated.safetensors: truncated or padded recording"):
        Recording(broken)
    (tmp_path / "stub.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(RecordingError, match=r"stub.safetensors: truncated recording \(no safetensors header\)"):
        Recording(tmp_path / "stub.safetensors")


def test_corrupted_header_is_refused(tiny_runs, tmp_path):
    corrupted = tmp_path / "corrupted.safetensors"
    content = bytearray(tiny_runs[("tied", 42)].read_bytes())
    content[8:12] = b"\xff\xfe\x00{"
    corrupted.write_bytes(bytes(content))
    with pytest.raises(RecordingError, match=r"corrupted.safetensors: corrupted recording \(header is not JSON\)"):
        Recording(corrupted)


def test_tied_file_where_an_untied_one_is_expected(tiny_runs):
    with pytest.raises(RecordingError, match=r"seed42.safetensors: a tied recording where an untied one is expected"):
        Recording(tiny_runs[("tied", 42)]).expect(tied=False)
    with pytest.raises(RecordingError, match=r"no tensor 'embeddings_E' in this tied recording"):
        Recording(tiny_runs[("tied", 42)]).tensor("embeddings_E")


def test_recording_made_under_another_config(tiny_runs):
    changed = tiny_config(training={"learning_rate": 0.002})
    with pytest.raises(RecordingError, match=r"recorded under another config \(differs in training.learning_rate\)"):
        Recording(tiny_runs[("tied", 42)]).expect(config=changed)
    Recording(tiny_runs[("tied", 42)]).expect(tied=True, config=tiny_config())


def _train_with_file_size_limit(tiny_data, out, limit_bytes):
    """A training process that may not write a file larger than limit_bytes: the disk-full stand-in."""
    folder = tiny_data["folder"]
    code = (
        "import sys;"
        "from flannel.training.numerics import pin_cpu_kernels; pin_cpu_kernels(True); import torch;"
        "from helpers import tiny_config; from flannel.training.loop import Run, train_run; from flannel.logs import script_logging;"
        "from safetensors.torch import load_file; from safetensors.numpy import load_file as load_np;"
        "ids = torch.from_numpy(load_np(sys.argv[2])['token_ids'].astype('int64'));\n"
        "with script_logging(None):\n"
        "    train_run(tiny_config(), Run('tied', 42), ids, load_file(sys.argv[3]), sys.argv[4])"
    )

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as a full disk gives ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder / "token_ids.safetensors"),
                           str(folder / "live_dead_tokens.safetensors"), str(out)],
                          preexec_fn=limit, capture_output=True, text=True, env=python_env())


def test_disk_full_fails_before_training_with_the_file_named_and_no_partial_file(tiny_data, tmp_path):
    out = tmp_path / "seed42.safetensors"
    result = _train_with_file_size_limit(tiny_data, out, 200_000)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and re.search(r"seed42.safetensors.partial: cannot reserve \d+ bytes \(File too large\)", errors[0])
    assert not re.search(r"step \d+/\d+", result.stderr)  # it failed before the first step's progress line
    assert list(tmp_path.iterdir()) == []


def test_sigkill_mid_run_leaves_nothing_complete_and_the_rerun_gives_identical_bytes(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["training"].update(steps=1000, log_every=50)
    (workdir / "config" / "slow.yaml").write_text(yaml.safe_dump(config))
    target = "results/main/runs/tied/seed42.safetensors"
    args = [target, "--cores", "1", "--configfile", "config/slow.yaml"]  # targets first: --configfile is greedy
    snakemake(workdir, "results/data/token_stats.json", "results/data/live_dead_tokens.safetensors", *args[1:])
    log = workdir / "logs" / "main" / "train" / "tied" / "seed42.log"
    job = subprocess.Popen(["snakemake", *args], cwd=workdir, start_new_session=True,
                           env={**os.environ, "PYTHONPATH": str(workdir / "src")},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (log.exists() and "step 100/1000" in log.read_text()):
        assert job.poll() is None and time.monotonic() < deadline, "training did not get going"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert not (workdir / target).exists()
    partial = workdir / (target + ".partial")
    assert partial.exists()
    with pytest.raises(RecordingError, match="incomplete recording"):
        Recording(partial)
    snakemake(workdir, "--unlock", *args)  # a killed Snakemake leaves its lock, as after a power loss
    snakemake(workdir, "--rerun-incomplete", *args)
    first = (workdir / target).read_bytes()
    Recording(workdir / target)
    snakemake(workdir, *args, "--forcerun", "train")  # after the target: --forcerun is greedy too
    assert (workdir / target).read_bytes() == first
    assert not partial.exists()


def config_naming(workdir, section: str, key: str, path: str) -> str:
    """config/test.yaml with one config key pointing at `path`, written beside it; returns its name."""
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config.setdefault(section, {})[key] = path
    (workdir / "config" / "named.yaml").write_text(yaml.safe_dump(config))
    return "config/named.yaml"


@pytest.mark.parametrize("section, key, target", [
    ("data", "corpus", "results/data/token_ids.safetensors"),
    ("data", "tokenizer", "results/data/live_dead_tokens.csv"),
    ("data", "tokenizer_corpus", "results/data/tokenizer.json"),
    ("sanity", "legacy_flannel1", "results/main/sanity/report.json"),
])
def test_a_missing_config_named_file_is_one_line_naming_key_and_file_when_a_job_needs_it(tmp_path, section, key, target):
    workdir = copy_repo(tmp_path / "repo")
    configfile = config_naming(workdir, section, key, "nowhere/file.txt")
    # The config is valid and the dry run shows the plan: another rule or a storage provider may still make it.
    plan = snakemake(workdir, target, "-n", "--cores", "1", "--configfile", configfile).stdout
    assert re.search(r"^missing_config_file\s+1$", plan, flags=re.MULTILINE), plan[-2000:]
    # Run, the job that would provide the file fails first (before any training) with one line naming both.
    if section == "sanity":
        target = "nowhere/file.txt"  # the check needs every run first; asking for the file alone is the same job
    result = snakemake(workdir, target, "--cores", "1", "--configfile", configfile, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "file not found" in line]
    assert len(errors) == 1 and errors[0].endswith(f"ERROR config key '{section}.{key}': file not found: nowhere/file.txt")
    assert not (workdir / "results" / "main" / "runs").exists()
    assert not (workdir / "nowhere").exists()


def test_a_named_file_that_exists_is_used_and_never_a_job_output(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    (workdir / "corpus.txt").write_text("the cat sat on the mat. " * 2000, encoding="utf-8")
    configfile = config_naming(workdir, "data", "corpus", "corpus.txt")
    before = (workdir / "corpus.txt").read_bytes()
    # --forceall reruns every job of the plan, deleting its outputs first: the user's file must not be one.
    snakemake(workdir, "results/data/token_ids.safetensors", "--forceall", "--cores", "1", "--configfile", configfile)
    assert (workdir / "corpus.txt").read_bytes() == before
    assert (workdir / "results" / "data" / "token_ids.safetensors").is_file()


def test_the_notebook_scale_plans_without_the_notebooks_data(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    assert not (workdir / "data").exists()
    plan = snakemake(workdir, "-n", "--configfile", "config/flannel.yaml").stdout
    assert re.search(r"^train\s+11$", plan, flags=re.MULTILINE) and re.search(r"^missing_config_file\s+2$", plan,
                                                                              flags=re.MULTILINE), plan[-2000:]


def test_nothing_is_unpickled_anywhere():
    pattern = re.compile(r"torch\.load\(|pickle|allow_pickle\s*=\s*True|weights_only\s*=\s*False")
    sources = [p for folder in ("src", "workflow", "rules", "tools") for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".smk"}]
    offenders = [str(p.relative_to(ROOT)) for p in sources if pattern.search(p.read_text(encoding="utf-8"))]
    assert sources and offenders == []


def test_the_data_half_and_training_need_no_network(tiny_data, tmp_path, monkeypatch):
    from flannel.data import tokens

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    vocab_size = tiny_data["config"]["model"]["vocab_size"]
    tokens.train_tokenizer(tiny_data["folder"] / "tokenizer.txt", vocab_size)
    train_tiny(tiny_data, tmp_path, "untied", 42, tiny_config(training={"steps": 2}))


def test_every_reader_refuses_a_run_recorded_under_another_config(tiny_data, tiny_runs):
    """A run left from an older config (say, with --rerun-triggers mtime) never passes for a current one."""
    import json

    from flannel.analysis import per_step
    from flannel.config import sanity_settings, training_json
    from flannel.errors import SanityError
    from flannel.sanity.report import sanity_report

    changed = json.loads(training_json(tiny_config(training={"learning_rate": 0.002})))
    differs = r"recorded under another config \(differs in training.learning_rate\); rerun its training"
    with pytest.raises(RecordingError, match=differs):
        per_step.analyse_run(tiny_runs[("tied", 42)], expected_config=changed)
    with pytest.raises(RecordingError, match=differs):
        per_step.decomposition(tiny_runs[("tied", 42)], tiny_runs[("untied", 42)], expected_config=changed)
    with pytest.raises(SanityError, match=differs):
        sanity_report(sanity_settings(tiny_data["config"]), runs=tiny_runs, replicas={},
                      masks=tiny_data["folder"] / "live_dead_tokens.safetensors", expected_config=changed)
    current = json.loads(training_json(tiny_data["config"]))
    assert len(per_step.analyse_run(tiny_runs[("tied", 42)], expected_config=current)) == 21


@pytest.mark.parametrize("section, values, message", [
    ("training", {"steps": 20.0}, r"config key 'training.steps': 20.0 is not an integer \(write 20\)"),
    ("runs", {"tied": [42.0, 43]}, r"config key 'runs.tied.0': 42.0 is not an integer"),
    ("training", {"steps": 10**19}, r"config key 'training.steps': 10000000000000000000 is greater than the maximum"),
    ("runs", {"tied": [2**64]}, r"config key 'runs.tied.0': 18446744073709551616 is greater than the maximum"),
    ("model", {"n_embd": 1, "n_head": 1}, r"config key 'model.n_embd': 1 is less than the minimum of 2"),
    ("figures", {"dpi": 10000}, r"config key 'figures.dpi': 10000 is greater than the maximum of 600"),
    ("data", {"corpus": "my{corpus}.txt"}, r"config key 'data.corpus': my\{corpus\}.txt: braces in a path"),
])
def test_values_the_schema_alone_let_through_are_refused_naming_the_key(section, values, message):
    from flannel.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_config(**{section: values})


def test_an_unavailable_device_is_one_line_naming_the_key():
    import torch

    from flannel.errors import ConfigError
    from flannel.training.loop import pick_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match=r"config key 'training.device': cuda is not available on this machine"):
        pick_device("cuda")


def test_a_config_that_records_no_embeddings_is_refused():
    from flannel.errors import ConfigError

    with pytest.raises(ConfigError, match=r"config key 'recording.quantities': \[\] lacks embeddings"):
        tiny_config(recording={"quantities": []})
    with pytest.raises(ConfigError, match=r"lacks embeddings"):
        tiny_config(recording={"quantities": ["grads", "logits"]})


def test_a_figure_the_experiment_cannot_draw_is_a_card_saying_why(tmp_path):
    from flannel.report import figures

    seeds = {"tied": [42], "untied": [], "paired": [], "reference": 42}
    assert figures.missing("d_e_minus_w", seeds, ["embeddings"]) == "this experiment trains no untied run"
    assert figures.missing("f_decomposition", {**seeds, "untied": [43]}, ["embeddings"]) == (
        "no seed of this experiment is trained both tied and untied")
    assert figures.missing("i_gradients", seeds, ["embeddings", "grads"]) == "recording.quantities lacks momentum, variance"
    assert figures.missing("a_dead_cloud", seeds, ["embeddings"]) is None
    settings = {"seeds": seeds, "quantities": ["embeddings"], "figures": {"dpi": 50}}
    # A stale figure of an earlier config is overwritten by the card, never left beside current ones.
    (tmp_path / "d_e_minus_w.png").write_bytes(b"an old figure")
    assert figures.draw("d_e_minus_w", {}, settings, tmp_path / "d_e_minus_w.png") == "this experiment trains no untied run"
    assert (tmp_path / "d_e_minus_w.png").read_bytes().startswith(b"\x89PNG")


def test_a_killed_warm_up_is_cleared_by_the_next_replica(tiny_data, tmp_path):
    from flannel.training.loop import Run, train_replica

    out = tmp_path / "tied" / "seed42.safetensors"
    leftover = out.with_name(".warmup-seed42")
    leftover.mkdir(parents=True)
    (leftover / "warmup.safetensors.partial").write_bytes(b"\0" * 1000)  # what SIGKILL leaves
    train_replica(tiny_config(training={"steps": 2}), Run("tied", 42), tiny_data["ids"], tiny_data["masks"], out,
                  warmup_seed=43)
    assert sorted(p.name for p in out.parent.iterdir()) == ["seed42.safetensors"]


def test_a_recording_of_no_rows_is_refused_before_anything_is_written(tiny_data, tmp_path):
    """rows: dead_and_sample with live_sample 0 records only the dead rows; with no dead token, none at all."""
    import torch

    from flannel.errors import ConfigError
    from flannel.training.loop import Run, train_run

    vocab_size = tiny_data["config"]["model"]["vocab_size"]
    every_token_live = {"dead_mask": torch.zeros(vocab_size, dtype=torch.bool), "live_mask": torch.ones(vocab_size, dtype=torch.bool),
                        "dead_indices": torch.zeros(0, dtype=torch.int64), "live_indices": torch.arange(vocab_size)}
    config = tiny_config(training={"steps": 2}, recording={"rows": "dead_and_sample", "live_sample": 0})
    with pytest.raises(ConfigError, match=r"^config key 'recording.live_sample': 0 live rows and no dead token record no row"):
        train_run(config, Run("tied", 42), tiny_data["ids"], every_token_live, tmp_path / "tied" / "seed42.safetensors")
    assert list(tmp_path.rglob("*")) == []


def _interruptible(**kwargs) -> subprocess.Popen:
    """A process in its own group whose Ctrl-C raises, as in a terminal (a test runner started in the background
    may have inherited SIGINT ignored, and ignored signals stay ignored across exec)."""
    return subprocess.Popen(start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


@pytest.mark.slow
def test_ctrl_c_during_training_is_one_line_per_job_and_the_rerun_gives_the_same_bytes(tmp_path):
    """Ctrl-C stops each training job after its current step with a checkpoint (one line in its log); the
    rerun goes on from it and ends with the bytes of a run never interrupted."""
    workdir = copy_repo(tmp_path / "repo")
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["training"].update(steps=1000, log_every=50)
    (workdir / "config" / "slow.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/main/runs/tied/seed42.safetensors", "results/main/runs/untied/seed42.safetensors"]
    args = [*targets, "--cores", "2", "--configfile", "config/slow.yaml"]  # targets first: --configfile is greedy
    snakemake(workdir, "results/data/token_stats.json", "results/data/live_dead_tokens.safetensors", *args[2:])
    logs = [workdir / "logs" / "main" / "train" / tying / "seed42.log" for tying in ("tied", "untied")]
    with open(tmp_path / "terminal.txt", "w") as terminal:
        job = _interruptible(args=["snakemake", *args], cwd=workdir, env={**os.environ, "PYTHONPATH": str(workdir / "src")},
                             stdout=terminal, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not all(log.exists() and "step 100/1000" in log.read_text() for log in logs):
            assert job.poll() is None and time.monotonic() < deadline, "training did not get going"
            time.sleep(0.1)
        # The jobs carry the start-up hook (test_ctrl_c_while_a_job_starts_up_is_one_line) on their path.
        jobs = subprocess.run(["pgrep", "-g", str(job.pid), "-f", r"\.train\.py"], capture_output=True, text=True).stdout.split()
        assert len(jobs) == 2 and all(str(workdir / "workflow" / "startup") in Path(f"/proc/{pid}/environ").read_text()
                                      for pid in jobs)
        os.killpg(job.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        assert job.wait(timeout=120) != 0
    printed = (tmp_path / "terminal.txt").read_text()
    assert "Traceback" not in printed and "KeyboardInterrupt" not in printed, printed[-3000:]
    stopped = r"ERROR (un)?tied seed 42: stopped by SIGINT after step \d+ of 1000, checkpoint saved; run the job again"
    assert len(re.findall(stopped, printed)) == 2, printed[-3000:]
    for log in logs:
        assert re.search(stopped, log.read_text().splitlines()[-1])
    runs = workdir / "results" / "main" / "runs"
    assert sorted(p.name for p in runs.rglob("*.safetensors*")) == ["seed42.safetensors.checkpoint"] * 2 + \
        ["seed42.safetensors.partial"] * 2  # no output, the .partial kept for the resume
    snakemake(workdir, *args)
    assert all("resumed from the checkpoint at step" in log.read_text() for log in logs)
    first = [(workdir / target).read_bytes() for target in targets]
    snakemake(workdir, *args, "--forcerun", "train")
    assert [(workdir / target).read_bytes() for target in targets] == first
    assert list((workdir / "results" / "main" / "runs").rglob("*.partial")) == []


def test_ctrl_c_while_a_job_starts_up_is_one_line(tmp_path):
    """Before a script's own handling begins, Snakemake's preamble imports Snakemake for about a second; the
    start-up hook the workflow puts on its jobs' PYTHONPATH ends the job there with one line, not a traceback
    quoting the preamble (one line holding the whole serialised job)."""
    script = tmp_path / ".snakemake" / "scripts" / "tmpjob.train.py"
    script.parent.mkdir(parents=True)
    script.write_text("import sys, time\nprint('ready', flush=True)\ntime.sleep(60)\n")  # a preamble still importing
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow" / "startup")}
    job = _interruptible(args=[sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "ready\n"
    os.killpg(job.pid, signal.SIGINT)
    _, stderr = job.communicate(timeout=30)
    assert (job.returncode, stderr) == (130, "interrupted\n")

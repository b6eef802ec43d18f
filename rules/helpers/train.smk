# The paths and input/output helpers of rules/train.smk (the linter keeps functions out of rule files).
# The container decides the run files' suffix (recording.format, one for the whole workflow).
RUN_SUFFIX = {"safetensors": ".safetensors", "compact": ".zarr.zip"}[config["recording"]["format"]]
RUN = f"results/{{experiment}}/runs/{{tying}}/seed{{seed}}{RUN_SUFFIX}"
MOVED = "results/{experiment}/runs/{tying}/seed{seed}.moved.tsv"
EXPORT = "results/{experiment}/export/{tying}/seed{seed}.safetensors"


def train_targets(experiment):
    return per_run(experiment, RUN) + per_run(experiment, MOVED)


def train_mem_mb(wildcards):
    """The model, the fp32 logits of one batch and the per-step record copies; never the whole recording."""
    experiment = EXPERIMENTS[wildcards.experiment]
    model, training = experiment["model"], experiment["training"]
    logits_mb = training["batch_size"] * training["seq_len"] * model["vocab_size"] * 4 * 6 / 2**20
    return int(1024 + logits_mb)


def training_gpus(wildcards):
    """Training jobs ask SLURM for a GPU only when the experiment trains on one."""
    return 1 if EXPERIMENTS[wildcards.experiment]["training"]["device"] == "cuda" else 0


def training_threads(wildcards):
    return EXPERIMENTS[wildcards.experiment]["training"]["threads"]


def train_runtime_min(wildcards):
    """Minutes for SLURM, from a conservative 0.5 steps/s."""
    return int(10 + EXPERIMENTS[wildcards.experiment]["training"]["steps"] / 0.5 / 60)


def replica_runtime_min(wildcards):
    """The warm-up's two recording intervals (flannel.training.loop.warmup_config), then the replica's training."""
    experiment = EXPERIMENTS[wildcards.experiment]
    warmup = min(experiment["training"]["steps"], 2 * experiment["recording"]["record_every"])
    return train_runtime_min(wildcards) + int(warmup / 0.5 / 60)

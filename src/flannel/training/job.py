"""What the train and replica scripts share: a training job's run config, run and inputs, read with the CPU
kernels pinned before torch loads."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..config import experiment_config
from .numerics import pin_cpu_kernels


@dataclass(frozen=True)
class TrainingJob:
    config: dict  # the run config, with the experiment's log_every
    run: object  # flannel.training.loop.Run
    token_ids: object  # torch.Tensor
    masks: dict
    token_ids_sha256: str


def training_job(training_json: str, workflow_config: dict, wildcards, token_ids: str, masks: str) -> TrainingJob:
    """The job's run config (its `training` param), run (wildcards) and inputs. The progress-line and checkpoint
    intervals reach no byte, so they are read from the workflow's config, not from a param: Snakemake reruns a
    job whose params change, and neither knob must retrain."""
    config = json.loads(training_json)
    training = experiment_config(workflow_config, wildcards.experiment)["training"]
    config["training"]["log_every"], config["training"]["checkpoint_every"] = training["log_every"], training["checkpoint_every"]
    pin_cpu_kernels(config["training"]["portable_numerics"])  # before torch loads
    from ..data import tokens
    from ..outputs import sha256_file
    from .loop import Run

    ids = tokens.load_token_ids(token_ids, config["model"]["vocab_size"])
    return TrainingJob(config, Run(wildcards.tying, int(wildcards.seed)), ids, tokens.load_masks(masks),
                       sha256_file(token_ids))

# One training run (rule train): the streamed recording and the table of what moved.
import json

from flannel.config import experiment_config
from flannel.logs import script_logging
from flannel.training.numerics import pin_cpu_kernels

with script_logging(snakemake.log[0]) as log:
    config = json.loads(snakemake.params.training)
    # The progress-line interval reaches no byte, so it is read from the config itself, not from a param:
    # Snakemake reruns a job whose params change, and a logging knob must not retrain.
    experiment = experiment_config(snakemake.config, snakemake.wildcards.experiment)
    config["training"]["log_every"] = experiment["training"]["log_every"]
    pin_cpu_kernels(config["training"]["portable_numerics"])  # before torch loads
    from flannel.data import tokens
    from flannel.outputs import sha256_file
    from flannel.training.loop import Run, train_run

    ids = tokens.load_token_ids(snakemake.input.token_ids, config["model"]["vocab_size"])
    run = Run(snakemake.wildcards.tying, int(snakemake.wildcards.seed))
    result = train_run(config, run, ids, tokens.load_masks(snakemake.input.masks), snakemake.output.run,
                       snakemake.output.moved, token_ids_sha256=sha256_file(snakemake.input.token_ids))
    log.info("final state sha256 %s", result["state_sha256_final"])

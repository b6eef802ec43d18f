from safetensors.torch import load_file

from flannel import data
from flannel.checks import train_replica
from flannel.logs import script_logging
from flannel.outputs import sha256_file
from flannel.training import Run

with script_logging(snakemake.log[0]) as log:
    config = snakemake.config
    ids = data.load_token_ids(snakemake.input.token_ids, config["model"]["vocab_size"])
    run = Run(snakemake.wildcards.tying, int(snakemake.wildcards.seed))
    log.info("warm-up seed %d first, then the replica of %s seed %d, in this process", snakemake.params.warmup_seed,
             run.tying, run.seed)
    result = train_replica(config, run, ids, load_file(snakemake.input.masks), snakemake.output.run,
                           warmup_seed=snakemake.params.warmup_seed, token_ids_sha256=sha256_file(snakemake.input.token_ids))
    log.info("final state sha256 %s", result["state_sha256_final"])

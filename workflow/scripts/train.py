from safetensors.torch import load_file

from flannel import data
from flannel.logs import script_logging
from flannel.outputs import sha256_file
from flannel.training import Run, train_run

with script_logging(snakemake.log[0]) as log:
    config = snakemake.config
    ids = data.load_token_ids(snakemake.input.token_ids, config["model"]["vocab_size"])
    run = Run(snakemake.wildcards.tying, int(snakemake.wildcards.seed))
    result = train_run(config, run, ids, load_file(snakemake.input.masks), snakemake.output.run, snakemake.output.moved,
                       token_ids_sha256=sha256_file(snakemake.input.token_ids))
    log.info("final state sha256 %s", result["state_sha256_final"])

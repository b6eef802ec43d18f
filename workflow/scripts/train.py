# One training run (rule train): the streamed recording and the table of what moved.
from flannel.logs import script_logging
from flannel.training.job import training_job

with script_logging(snakemake.log[0]) as log:
    job = training_job(snakemake.params.training, snakemake.config, snakemake.wildcards, snakemake.input.token_ids,
                       snakemake.input.masks)
    from flannel.training.loop import train_run  # torch loads here, after the kernels are pinned

    result = train_run(job.config, job.run, job.token_ids, job.masks, snakemake.output.run, snakemake.output.moved,
                       token_ids_sha256=job.token_ids_sha256)
    log.info("final state sha256 %s", result["state_sha256_final"])

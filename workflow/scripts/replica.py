# The replica of a reference run (rule replica): a warm-up seed first, then the run, in this one process.
from flannel.logs import script_logging
from flannel.training.job import training_job

with script_logging(snakemake.log[0]) as log:
    job = training_job(snakemake.params.training, snakemake.config, snakemake.wildcards, snakemake.input.token_ids,
                       snakemake.input.masks)
    from flannel.training.loop import train_replica, warmup_config  # torch loads here, after the kernels are pinned

    warmup_seed = snakemake.params.warmup_seed
    log.info("warm-up seed %d first (%d steps), then the replica of %s seed %d, in this process", warmup_seed,
             warmup_config(job.config)["training"]["steps"], job.run.tying, job.run.seed)
    result = train_replica(job.config, job.run, job.token_ids, job.masks, snakemake.output.run,
                           warmup_seed=warmup_seed, token_ids_sha256=job.token_ids_sha256)
    log.info("final state sha256 %s", result["state_sha256_final"])

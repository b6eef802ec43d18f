# Per experiment, the Flannel 1 vs Flannel 3 sanity checks (notebook 1.22e as rules with a verdict) and the replica
# runs.
# The check writes the report and never fails on a verdict; a separate verdict job fails the workflow, so a
# failed reproducibility check leaves the report on disk (Snakemake deletes the outputs of a failed job).


include: "helpers/sanity.smk"


rule replica:
    input:
        token_ids=TOKEN_IDS,
        masks=MASKS,
    output:
        run=REPLICA,
    log:
        "logs/{experiment}/sanity/replica/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/sanity/replica/{tying}/seed{seed}.tsv"
    conda:
        "../envs/flannel.yaml"
    threads: training_threads
    resources:
        mem_mb=train_mem_mb,
        runtime=replica_runtime_min,
        gpu=training_gpus,
    params:
        training=experiment_training,
        warmup_seed=replica_warmup_seed,
        code=code_digest("replica.py"),
    script:
        "../workflow/scripts/replica.py"


rule sanity_check:
    input:
        unpack(sanity_inputs),
    output:
        json=SANITY_REPORT,
        md=report(
            SANITY_MARKDOWN,
            caption="../workflow/report/sanity.rst",
            category="Sanity checks",
            subcategory="{experiment}",
        ),
        manifest=SANITY_MANIFEST,
    log:
        "logs/{experiment}/sanity/sanity_check.log",
    benchmark:
        "benchmarks/{experiment}/sanity/sanity_check.tsv"
    conda:
        "../envs/flannel.yaml"
    resources:
        # Lazy reads: one record of one tensor at a time (measured by tools/measure_check_memory.py).
        mem_mb=2048,
        runtime=60,
    params:
        # (tying, seed) of each input run and replica, in input order
        run_ids=experiment_run_ids,
        replica_ids=experiment_replica_ids,
        settings=sanity_settings,
        training=experiment_training,
        code=code_digest("sanity_check.py"),
    script:
        "../workflow/scripts/sanity_check.py"


rule sanity_verdict:
    input:
        report=SANITY_REPORT,
    output:
        VERDICT,
    log:
        "logs/{experiment}/sanity/sanity_verdict.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        fail=config["sanity"]["fail_on_reproducibility"],
        code=code_digest("sanity_verdict.py"),
    script:
        "../workflow/scripts/sanity_verdict.py"

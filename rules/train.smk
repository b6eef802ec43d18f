# One training job per (experiment, tying, seed): the streamed recording and the table of what moved.


include: "helpers/train.smk"


rule train:
    input:
        token_ids=TOKEN_IDS,
        masks=MASKS,
        # token_stats refuses a corpus too short for the batch, so that fails before any training starts.
        stats=TOKEN_STATS,
    output:
        run=RUN,
        moved=MOVED,
    log:
        "logs/{experiment}/train/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/train/{tying}/seed{seed}.tsv"
    conda:
        "../envs/flannel.yaml"
    threads: training_threads
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime_min,
        gpu=training_gpus,
    params:
        training=experiment_training,
        code=code_digest("train.py"),
    script:
        "../workflow/scripts/train.py"


# On request only (not in `all`): a compact run file in the notebooks' safetensors layout.
rule export_safetensors:
    input:
        run=RUN,
    output:
        run=EXPORT,
    log:
        "logs/{experiment}/export/{tying}/seed{seed}.log",
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("export_safetensors.py"),
    script:
        "../workflow/scripts/export_safetensors.py"

# One training job per (tying, seed): the streamed recording and the table of what moved.


rule train:
    input:
        token_ids="results/data/token_ids.safetensors",
        masks="results/data/live_dead_tokens.safetensors",
        # token_stats refuses a corpus too short for the batch, so that fails before any training starts.
        stats="results/data/token_stats.json",
    output:
        run="results/runs/{tying}/seed{seed}.safetensors",
        moved="results/runs/{tying}/seed{seed}.moved.tsv",
    log:
        "logs/train/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{tying}/seed{seed}.tsv"
    # A rerun gives the same bytes, so a retry (a node lost on a cluster, say) is safe.
    retries: 2
    conda:
        "../envs/flannel.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime_min,
        gpu=TRAINING_GPUS,
    params:
        training=flannel.config.training_json(config),
        code=code_digest("train.py"),
    script:
        "../workflow/scripts/train.py"

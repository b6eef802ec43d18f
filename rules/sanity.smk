# The Flannel 1 vs Flannel 3 sanity checks (notebook 1.22e as rules with a verdict) and the replica runs.
# The check writes the report and never fails on a verdict; a separate verdict job fails the workflow, so a
# failed reproducibility check leaves the report on disk (Snakemake deletes the outputs of a failed job).


rule replica:
    input:
        token_ids="results/data/token_ids.safetensors",
        masks="results/data/live_dead_tokens.safetensors",
    output:
        run="results/sanity/replica/{tying}/seed{seed}.safetensors",
    log:
        "logs/sanity/replica/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/sanity/replica/{tying}/seed{seed}.tsv"
    # A rerun gives the same bytes, so a retry (a node lost on a cluster, say) is safe.
    retries: 2
    conda:
        "../envs/flannel.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=replica_runtime_min,
        gpu=TRAINING_GPUS,
    params:
        training=flannel.config.training_json(config),
        warmup_seed=flannel.config.replica_warmup_seed(config),
        code=code_digest("replica.py"),
    script:
        "../workflow/scripts/replica.py"


rule sanity_check:
    input:
        **legacy_inputs(),
        runs=run_files(),
        accounting=accounting_files(),
        replicas=replica_files(),
        masks="results/data/live_dead_tokens.safetensors",
    output:
        json="results/sanity/report.json",
        md=report(
            "results/sanity/report.md",
            caption="../workflow/report/sanity.rst",
            category="Sanity checks",
        ),
        manifest="results/sanity/manifest.tsv",
    log:
        "logs/sanity/sanity_check.log",
    benchmark:
        "benchmarks/sanity/sanity_check.tsv"
    conda:
        "../envs/flannel.yaml"
    resources:
        # Lazy reads: one record of one tensor at a time (measured by tools/measure_check_memory.py).
        mem_mb=2048,
        runtime=60,
    params:
        # (tying, seed) of each input run and replica, in input order
        run_ids=run_ids(),
        replica_ids=replica_ids(),
        settings=canonical(flannel.config.sanity_settings(config)),
        training=flannel.config.training_json(config),
        code=code_digest("sanity_check.py"),
    script:
        "../workflow/scripts/sanity_check.py"


rule sanity_verdict:
    input:
        report="results/sanity/report.json",
    output:
        "results/sanity/verdict.txt",
    log:
        "logs/sanity/sanity_verdict.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        fail=config["sanity"]["fail_on_reproducibility"],
        code=code_digest("sanity_verdict.py"),
    script:
        "../workflow/scripts/sanity_verdict.py"

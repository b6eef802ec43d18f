# The Flannel 1 vs Flannel 3 sanity checks (notebook 1.22e as rules with a verdict) and the replica runs.
# The check writes the report and never fails on a verdict; a separate verdict job fails the workflow, so a
# failed reproducibility check leaves the report on disk (Snakemake deletes the outputs of a failed job).
SANITY_MODULES = ("checks", "config", "recording", "outputs")
# The reference seed's runs, retrained after another seed in one process: tied, and untied if listed.
REPLICA_FILES = [
    f"results/sanity/replica/{tying}/seed{config['runs']['reference_seed']}.safetensors"
    for tying in ("tied", "untied")
    if tying == "tied" or config["runs"]["reference_seed"] in config["runs"]["untied"]
]
# The notebooks' files are inputs only when the config names them.
LEGACY_INPUTS = {
    key: config["sanity"][key]
    for key in ("legacy_flannel1", "legacy_flannel3", "legacy_masks")
    if config["sanity"][key]
}
SANITY_TARGETS = [
    "results/sanity/report.json",
    "results/sanity/report.md",
    "results/sanity/manifest.tsv",
    "results/sanity/verdict.txt",
]
# A lambda, not a def: `snakemake --lint` refuses functions beside rules, and common.smk calls this.
sanity_targets = lambda: list(SANITY_TARGETS)


rule replica:
    input:
        token_ids="results/data/token_ids.safetensors",
        masks="results/data/live_dead_tokens.safetensors",
    output:
        run="results/sanity/replica/{tying}/seed{seed}.safetensors",
    params:
        training=flannel.config.training_json(config),
        code=code_digest(*TRAINING_MODULES, "checks"),
        warmup_seed=flannel.config.replica_warmup_seed(config),
    log:
        "logs/sanity/replica/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/sanity/replica/{tying}/seed{seed}.tsv"
    threads: config["training"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        # two trainings back to back: the warm-up seed, then the replica
        runtime=lambda wildcards: 2 * train_runtime_min(wildcards),
        gpu=TRAINING_GPUS,
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/replica.py"


rule sanity_check:
    input:
        **LEGACY_INPUTS,
        runs=run_files(),
        replicas=REPLICA_FILES,
        masks="results/data/live_dead_tokens.safetensors",
    output:
        json="results/sanity/report.json",
        md=report(
            "results/sanity/report.md",
            caption="../workflow/report/sanity.rst",
            category="Sanity checks",
        ),
        manifest="results/sanity/manifest.tsv",
    params:
        runs=json.dumps(config["runs"], sort_keys=True),  # canonical: key order alone never reruns
        training=flannel.config.training_json(config),
        compare_steps=config["sanity"]["compare_steps"],
        warmup_seed=flannel.config.replica_warmup_seed(config),
        code=code_digest(*SANITY_MODULES),
    log:
        "logs/sanity/sanity_check.log",
    benchmark:
        "benchmarks/sanity/sanity_check.tsv"
    resources:
        # Lazy reads: one record of one tensor at a time (measured by tools/measure_check_memory.py).
        mem_mb=2048,
        runtime=60,
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/sanity_check.py"


rule sanity_verdict:
    input:
        "results/sanity/report.json",
    output:
        "results/sanity/verdict.txt",
    params:
        fail=config["sanity"]["fail_on_reproducibility"],
        code=code_digest("checks"),
    log:
        "logs/sanity/sanity_verdict.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/sanity_check.py"

# Per-run analysis and Adam accounting tables, the tied/untied decomposition tables, the figures and the report's
# tables.
# Every rule here is local and cheap next to training; each carries a digest of the package code it runs,
# and the figures rule the figures config section, so editing figure code or a figure parameter redraws the
# figures without touching the tables, and editing analysis code recomputes tables and figures, never runs.


rule analyse_run:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/analysis/{tying}/seed{seed}.tsv",
    log:
        "logs/analysis/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=flannel.config.training_json(config),
        code=code_digest("analyse_run.py"),
    script:
        "../workflow/scripts/analyse_run.py"


rule decomposition:
    input:
        tied="results/runs/tied/seed{seed}.safetensors",
        untied="results/runs/untied/seed{seed}.safetensors",
    output:
        "results/analysis/decomposition/seed{seed}.tsv",
    log:
        "logs/analysis/decomposition/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/decomposition/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=flannel.config.training_json(config),
        code=code_digest("decomposition.py"),
    script:
        "../workflow/scripts/decomposition.py"


rule adam_accounting:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/analysis/adam/{tying}/seed{seed}.tsv",
    log:
        "logs/analysis/adam/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/adam/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("adam_accounting.py"),
    script:
        "../workflow/scripts/adam_accounting.py"


rule lattice:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        steps="results/analysis/lattice/{tying}/seed{seed}.tsv",
        rows="results/analysis/lattice/{tying}/seed{seed}.rows.tsv",
    log:
        "logs/analysis/lattice/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/lattice/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        settings=analysis_settings("early_l2", "mid_linf"),
        code=code_digest("lattice.py"),
    script:
        "../workflow/scripts/lattice.py"


# One job draws every figure: a job's start-up (imports) costs more than drawing a figure.
rule figures:
    input:
        **figure_inputs(),
    output:
        **figure_outputs(),
    log:
        "logs/figures/figures.log",
    benchmark:
        "benchmarks/figures/figures.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        settings=figure_settings(),
        code=code_digest("draw_figures.py"),
    script:
        "../workflow/scripts/draw_figures.py"


# The report's tables: token statistics and a summary row per run (the analysis tables' first and last steps).
rule report_tables:
    input:
        stats="results/data/token_stats.json",
        runs=analysis_tables(),
    output:
        **report_table_outputs(),
    log:
        "logs/report/report_tables.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=run_ids(),
        n_embd=config["model"]["n_embd"],
        code=code_digest("report_tables.py"),
    script:
        "../workflow/scripts/report_tables.py"

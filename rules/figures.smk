# Per-run analysis and Adam accounting tables, the tied/untied decomposition tables, the figures and the report's
# tables.
# Every rule here is local and cheap next to training; each carries a digest of the package code it runs,
# and the figures rule the figures config section, so editing figure code or a figure parameter redraws the
# figures without touching the tables, and editing analysis code recomputes tables and figures, never runs.


rule analyse_run:
    input:
        run="results/{experiment}/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/{experiment}/analysis/{tying}/seed{seed}.tsv",
    log:
        "logs/{experiment}/analysis/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=experiment_training,
        code=code_digest("analyse_run.py"),
    script:
        "../workflow/scripts/analyse_run.py"


rule decomposition:
    input:
        tied="results/{experiment}/runs/tied/seed{seed}.safetensors",
        untied="results/{experiment}/runs/untied/seed{seed}.safetensors",
    output:
        "results/{experiment}/analysis/decomposition/seed{seed}.tsv",
    log:
        "logs/{experiment}/analysis/decomposition/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/decomposition/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=experiment_training,
        code=code_digest("decomposition.py"),
    script:
        "../workflow/scripts/decomposition.py"


rule adam_accounting:
    input:
        run="results/{experiment}/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/{experiment}/analysis/adam/{tying}/seed{seed}.tsv",
    log:
        "logs/{experiment}/analysis/adam/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/adam/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("adam_accounting.py"),
    script:
        "../workflow/scripts/adam_accounting.py"


rule lattice:
    input:
        run="results/{experiment}/runs/{tying}/seed{seed}.safetensors",
    output:
        steps="results/{experiment}/analysis/lattice/{tying}/seed{seed}.tsv",
        rows="results/{experiment}/analysis/lattice/{tying}/seed{seed}.rows.tsv",
    log:
        "logs/{experiment}/analysis/lattice/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/lattice/{tying}/seed{seed}.tsv"
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
        unpack(figure_inputs),
    output:
        **figure_outputs(),
    log:
        "logs/{experiment}/figures/figures.log",
    benchmark:
        "benchmarks/{experiment}/figures/figures.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        settings=figure_settings,
        code=code_digest("draw_figures.py"),
    script:
        "../workflow/scripts/draw_figures.py"


# The report's tables of one experiment: a summary row per run (the analysis tables' first and last steps), the
# first step explained, and the findings page.
rule report_tables:
    input:
        runs=analysis_tables,
        decomposition=decomposition_tables,
    output:
        **report_table_outputs(),
    log:
        "logs/{experiment}/report/report_tables.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=experiment_run_ids,
        n_embd=experiment_n_embd,
        code=code_digest("report_tables.py"),
    script:
        "../workflow/scripts/report_tables.py"

# Per-run analysis and Adam accounting tables, the tied/untied decomposition tables, the figures and their report entries.
# Every rule here is local and cheap next to training; each carries a digest of the package code it runs,
# and the figures rule the figures config section, so editing figure code or a figure parameter redraws the
# figures without touching the tables, and editing analysis code recomputes tables and figures, never runs.


rule analyse_run:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/analysis/{tying}/seed{seed}.tsv",
    params:
        code=code_digest("analyse_run.py"),
    log:
        "logs/analysis/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/analyse_run.py"


rule decomposition:
    input:
        tied="results/runs/tied/seed{seed}.safetensors",
        untied="results/runs/untied/seed{seed}.safetensors",
    output:
        "results/analysis/decomposition/seed{seed}.tsv",
    params:
        code=code_digest("decomposition.py"),
    log:
        "logs/analysis/decomposition/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/decomposition/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/decomposition.py"


rule adam_accounting:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/analysis/adam/{tying}/seed{seed}.tsv",
    params:
        code=code_digest("adam_accounting.py"),
    log:
        "logs/analysis/adam/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/adam/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/adam_accounting.py"


rule lattice:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        steps="results/analysis/lattice/{tying}/seed{seed}.tsv",
        rows="results/analysis/lattice/{tying}/seed{seed}.rows.tsv",
    params:
        settings=canonical(config["analysis"]),
        code=code_digest("lattice.py"),
    log:
        "logs/analysis/lattice/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/lattice/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/lattice.py"


# One job draws every figure: a job's start-up (imports) costs more than drawing a figure.
rule figures:
    input:
        **figure_inputs(),
    output:
        **figure_outputs(),
    params:
        settings=figure_settings(),
        code=code_digest("draw_figures.py"),
    log:
        "logs/figures/figures.log",
    benchmark:
        "benchmarks/figures/figures.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/draw_figures.py"

# Across experiments: a summary row per run of every experiment (with the freeze's tables of the series after
# notebook 1.24, so the experiments answer "what changes the freeze" side by side) and the figures that set the
# experiments side by side. Reruns when any experiment's analysis tables change; one local job, cheap next to training.


include: "helpers/experiments.smk"


rule experiments_summary:
    input:
        runs=summary_inputs(),
        epochs=epoch_tables(),
        freeze=freeze_summaries(),
        phase_rows=per_summary_run(PHASE_ROWS),
        lifespan=per_summary_run(LIFESPAN_RUNS),
    output:
        **across_experiment_figure_outputs(),
        tsv=SUMMARY,
        html=report(
            SUMMARY_TABLE,
            caption="../workflow/report/experiments_summary.rst",
            category="Across experiments",
            labels={"table": "one row per run of every experiment"},
        ),
    log:
        "logs/experiments/experiments_summary.log",
    benchmark:
        "benchmarks/experiments/experiments_summary.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        runs=summary_runs(),
        settings=summary_settings(),
        code=code_digest("experiments_summary.py"),
    script:
        "../workflow/scripts/experiments_summary.py"

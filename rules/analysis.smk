# Per experiment, the tables read from the recordings: each run's analysis table, Adam accounting, lattice tables
# and dead-cloud epochs; the tied/untied decomposition and distances per paired seed; the sweep's distances; the
# epochs table across runs (also a report table). Every rule here is local and cheap next to training, and reads
# the recordings one record at a time; each carries a digest of the package code it runs, so editing analysis
# code recomputes tables and figures, never runs.


include: "helpers/analysis.smk"


rule analyse_run:
    input:
        run=RUN,
    output:
        ANALYSIS_TABLE,
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
        tied=fill(RUN, tying="tied"),
        untied=fill(RUN, tying="untied"),
    output:
        DECOMPOSITION,
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
        run=RUN,
    output:
        ADAM_TABLE,
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
        run=RUN,
    output:
        steps=LATTICE_STEPS,
        rows=LATTICE_ROWS,
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


rule epochs:
    input:
        run=RUN,
        rows=LATTICE_ROWS,
    output:
        EPOCH_SERIES,
    log:
        "logs/{experiment}/analysis/epochs/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/epochs/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=experiment_training,
        speed_window=config["analysis"]["speed_window"],
        code=code_digest("epochs.py"),
    script:
        "../workflow/scripts/epochs.py"


rule epochs_table:
    input:
        series=epoch_series_files,
        rows=lattice_row_files,
    output:
        **epoch_table_outputs(),
    log:
        "logs/{experiment}/analysis/epochs/epochs_table.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=experiment_run_ids,
        speed_window=config["analysis"]["speed_window"],
        freeze_fraction=config["analysis"]["freeze_fraction"],
        code=code_digest("epochs_table.py"),
    script:
        "../workflow/scripts/epochs_table.py"


rule tied_untied_distance:
    input:
        tied=fill(RUN, tying="tied"),
        untied=fill(RUN, tying="untied"),
    output:
        steps=DISTANCES,
        rows=DISTANCE_ROWS,
    log:
        "logs/{experiment}/analysis/distances/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/distances/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=experiment_training,
        code=code_digest("tied_untied_distance.py"),
    script:
        "../workflow/scripts/tied_untied_distance.py"


rule sweep_distance:
    input:
        runs=tied_runs,
    output:
        SWEEP_DISTANCE,
    log:
        "logs/{experiment}/analysis/distances/sweep.log",
    benchmark:
        "benchmarks/{experiment}/analysis/distances/sweep.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        seeds=tied_seeds,
        training=experiment_training,
        code=code_digest("sweep_distance.py"),
    script:
        "../workflow/scripts/sweep_distance.py"

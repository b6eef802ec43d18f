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


# The series after notebook 1.24: Adam's hop condition against the observed hops, each frozen row's cause by
# counterfactuals, the five phases with reheating and global-freeze runs, the dead rows' kinetics and flow, and
# one summary row per run and matrix.
rule hop_condition:
    input:
        run=RUN,
    output:
        HOP_STEPS,
    log:
        "logs/{experiment}/analysis/hops/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/hops/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("hop_condition.py"),
    script:
        "../workflow/scripts/hop_condition.py"


rule freeze_causes:
    input:
        run=RUN,
    output:
        FREEZE_CAUSES,
    log:
        "logs/{experiment}/analysis/hops/{tying}/seed{seed}.causes.log",
    benchmark:
        "benchmarks/{experiment}/analysis/hops/{tying}/seed{seed}.causes.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("freeze_causes.py"),
    script:
        "../workflow/scripts/freeze_causes.py"


rule five_phases:
    input:
        run=RUN,
    output:
        steps=PHASE_STEPS,
        rows=PHASE_ROWS,
        runs=PHASE_RUNS,
    log:
        "logs/{experiment}/analysis/phases/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/phases/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("five_phases.py"),
    script:
        "../workflow/scripts/five_phases.py"


rule kinetics:
    input:
        run=RUN,
    output:
        steps=KINETICS_STEPS,
        runs=KINETICS_RUNS,
    log:
        "logs/{experiment}/analysis/kinetics/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/kinetics/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("kinetics.py"),
    script:
        "../workflow/scripts/kinetics.py"


# h_mean, the force on the dead rows: its persistence and swing, its angle to the dead centroid's step, each
# cloud's liftoff from the origin, the live/dead separation, and the tokens it ranks highest.
rule h_mean:
    input:
        run=RUN,
        tokens=TOKEN_TABLE,
    output:
        steps=H_MEAN_STEPS,
        runs=H_MEAN_RUNS,
        tokens=H_MEAN_TOKENS,
    log:
        "logs/{experiment}/analysis/h_mean/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/h_mean/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        window=config["analysis"]["h_mean_window"],
        code=code_digest("h_mean.py"),
    script:
        "../workflow/scripts/h_mean.py"


# The series' open questions per dead row: its freeze step against its start (norm, angles to the dead centroid
# and to h_mean, its gradient's share along h_mean), and the dead cloud's contraction along and across its drift.
rule lifespan:
    input:
        run=RUN,
        lattice_rows=LATTICE_ROWS,
    output:
        rows=LIFESPAN_ROWS,
        runs=LIFESPAN_RUNS,
    log:
        "logs/{experiment}/analysis/lifespan/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/{experiment}/analysis/lifespan/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("lifespan.py"),
    script:
        "../workflow/scripts/lifespan.py"


rule freeze_summary:
    input:
        unpack(freeze_summary_inputs),
    output:
        table=FREEZE_SUMMARY,
        across_runs=FREEZE_ACROSS_RUNS,
    log:
        "logs/{experiment}/analysis/freeze_summary.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=experiment_run_ids,
        code=code_digest("freeze_summary.py"),
    script:
        "../workflow/scripts/freeze_summary.py"

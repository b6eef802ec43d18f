# The epochs of the dead cloud (when it first contracts, moves fastest, freezes, last moves) and the run-to-run
# distances of W's rows (tied vs untied per seed; the sweep's pairs), per experiment. Each reads the recordings
# one record at a time; the epochs table across runs goes to the report.


rule epochs:
    input:
        run="results/{experiment}/runs/{tying}/seed{seed}.safetensors",
        rows="results/{experiment}/analysis/lattice/{tying}/seed{seed}.rows.tsv",
    output:
        "results/{experiment}/analysis/epochs/{tying}/seed{seed}.tsv",
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
        tied="results/{experiment}/runs/tied/seed{seed}.safetensors",
        untied="results/{experiment}/runs/untied/seed{seed}.safetensors",
    output:
        steps="results/{experiment}/analysis/distances/seed{seed}.tsv",
        rows="results/{experiment}/analysis/distances/seed{seed}.rows.safetensors",
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
        "results/{experiment}/analysis/distances/sweep.tsv",
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

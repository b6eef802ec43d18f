# The epochs of the dead cloud (when it first contracts, moves fastest, freezes, last moves) and the run-to-run
# distances of W's rows (tied vs untied per seed; the sweep's pairs). Each reads the recordings one record at a
# time; the epochs table across runs goes to the report.


rule epochs:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
        rows="results/analysis/lattice/{tying}/seed{seed}.rows.tsv",
    output:
        epoch_series_path(),
    log:
        "logs/analysis/epochs/{tying}/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/epochs/{tying}/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=flannel.config.training_json(config),
        speed_window=config["analysis"]["speed_window"],
        code=code_digest("epochs.py"),
    script:
        "../workflow/scripts/epochs.py"


rule epochs_table:
    input:
        series=epoch_series_files(),
        rows=lattice_row_files(),
    output:
        **epoch_table_outputs(),
    log:
        "logs/analysis/epochs/epochs_table.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        run_ids=run_ids(),
        speed_window=config["analysis"]["speed_window"],
        freeze_fraction=config["analysis"]["freeze_fraction"],
        code=code_digest("epochs_table.py"),
    script:
        "../workflow/scripts/epochs_table.py"


rule tied_untied_distance:
    input:
        tied="results/runs/tied/seed{seed}.safetensors",
        untied="results/runs/untied/seed{seed}.safetensors",
    output:
        **tied_untied_distance_paths(),
    log:
        "logs/analysis/distances/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/distances/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        training=flannel.config.training_json(config),
        code=code_digest("tied_untied_distance.py"),
    script:
        "../workflow/scripts/tied_untied_distance.py"


rule sweep_distance:
    input:
        runs=[f"results/runs/tied/seed{seed}.safetensors" for seed in RUNS["tied"]],
    output:
        sweep_distance_path(),
    log:
        "logs/analysis/distances/sweep.log",
    benchmark:
        "benchmarks/analysis/distances/sweep.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        seeds=RUNS["tied"],
        training=flannel.config.training_json(config),
        code=code_digest("sweep_distance.py"),
    script:
        "../workflow/scripts/sweep_distance.py"

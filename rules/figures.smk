# Per-run analysis tables, the tied/untied decomposition tables, the figures and their report entries.
# Every rule here is local and cheap next to training; each carries a digest of the package code it runs,
# and the figures rule the figures config section, so editing figure code or a figure parameter redraws the
# figures without touching the tables, and editing analysis code recomputes tables and figures, never runs.
ANALYSIS_MODULES = ("analysis", "recording", "outputs")
FIGURE_MODULES = ANALYSIS_MODULES + ("figures",)
RUNS = config["runs"]
# Seeds trained both tied and untied: the pairs of the decomposition test.
PAIRED_SEEDS = [seed for seed in RUNS["tied"] if seed in RUNS["untied"]]

# name: (report category, what it shows, whether this config can draw it: d needs an untied run, f a pair)
FIGURES = {
    "a_dead_cloud": ("Dead-cloud geometry", "dead-cloud radius and centroid", True),
    "b_fraction_moved": ("Freeze and optimisation", "fraction of rows that moved, LR", True),
    "c_loss": ("Freeze and optimisation", "loss, tied vs untied", True),
    "d_e_minus_w": ("Tied vs untied", "||E - W|| (untied)", bool(RUNS["untied"])),
    "e_displacements": ("Dead-cloud geometry", "per-row displacement at the last step", True),
    "f_decomposition": ("Tied vs untied", "W1 = W2 + E2 decomposition", bool(PAIRED_SEEDS)),
    "g_pca": ("Dead-cloud geometry", "PCA of W at a few steps", True),
    "h_indicators": ("Under-trained-token indicators", "Land & Bartolo indicators, ROC AUC", True),
    "i_gradients": ("Freeze and optimisation", "gradients and Adam steps, dead vs live", True),
}
DRAWN = [name for name, (_, _, drawable) in FIGURES.items() if drawable]
FIGURE_TARGETS = [f"results/figures/{name}.png" for name in DRAWN]
# A lambda, not a function definition: `snakemake --lint` refuses those beside rules; common.smk calls it.
figure_targets = lambda: list(FIGURE_TARGETS)

# The named input lists the figures read (the figure script hands them to flannel.figures as named here):
# the tables of every run, the reference seed's recordings (per-row views), the decomposition tables.
FIGURE_INPUTS = {
    "tied": [f"results/analysis/tied/seed{seed}.tsv" for seed in RUNS["tied"]],
    "untied": [f"results/analysis/untied/seed{seed}.tsv" for seed in RUNS["untied"]],
    "tied_run": [f"results/runs/tied/seed{RUNS['reference_seed']}.safetensors"],
    "untied_run": [
        f"results/runs/untied/seed{seed}.safetensors"
        for seed in RUNS["untied"]
        if seed == RUNS["reference_seed"]
    ],
    "decomposition": [f"results/analysis/decomposition/seed{seed}.tsv" for seed in PAIRED_SEEDS],
}
FIGURE_SETTINGS = {
    "seeds": {
        "tied": RUNS["tied"],
        "untied": RUNS["untied"],
        "paired": PAIRED_SEEDS,
        "reference": RUNS["reference_seed"],
    },
    "figures": config["figures"],
}
# Each figure a report entry of its own: caption, category, labels.
FIGURE_OUTPUTS = {
    name: report(
        f"results/figures/{name}.png",
        caption=f"../workflow/report/{name}.rst",
        category=FIGURES[name][0],
        labels={"figure": name.split("_")[0], "shows": FIGURES[name][1]},
    )
    for name in DRAWN
}


rule analyse_run:
    input:
        run="results/runs/{tying}/seed{seed}.safetensors",
    output:
        "results/analysis/{tying}/seed{seed}.tsv",
    params:
        code=code_digest(*ANALYSIS_MODULES),
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
        code=code_digest(*ANALYSIS_MODULES),
    log:
        "logs/analysis/decomposition/seed{seed}.log",
    benchmark:
        "benchmarks/analysis/decomposition/seed{seed}.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/analyse_run.py"


# One job draws every figure: a job's start-up (imports) costs more than drawing a figure.
rule figures:
    input:
        **FIGURE_INPUTS,
    output:
        **FIGURE_OUTPUTS,
    params:
        settings=json.dumps(FIGURE_SETTINGS, sort_keys=True),  # canonical: key order alone never reruns
        code=code_digest(*FIGURE_MODULES),
    log:
        "logs/figures/figures.log",
    benchmark:
        "benchmarks/figures/figures.tsv"
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/draw_figures.py"

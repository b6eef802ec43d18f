# The paths and input/output helpers of rules/sanity.smk (the linter keeps functions out of rule files).
REPLICA = f"results/{{experiment}}/sanity/replica/{{tying}}/seed{{seed}}{RUN_SUFFIX}"
SANITY_REPORT = "results/{experiment}/sanity/report.json"
SANITY_MARKDOWN = "results/{experiment}/sanity/report.md"
SANITY_MANIFEST = "results/{experiment}/sanity/manifest.tsv"
VERDICT = "results/{experiment}/sanity/verdict.txt"


def replica_warmup_seed(wildcards):
    return flannel.config.replica_warmup_seed(EXPERIMENTS[wildcards.experiment])


def legacy_inputs():
    """The notebooks' files are inputs only when the config names them."""
    keys = ("legacy_flannel1", "legacy_flannel3", "legacy_masks")
    return {key: config["sanity"][key] for key in keys if config["sanity"][key]}


def sanity_inputs(wildcards):
    experiment = wildcards.experiment
    return {
        **legacy_inputs(),
        "runs": per_run(experiment, RUN),
        "accounting": per_run(experiment, ADAM_TABLE),
        "replicas": [
            fill(REPLICA, experiment=experiment, tying=tying, seed=seed) for tying, seed in replica_ids(experiment)
        ],
        "masks": MASKS,
    }


def sanity_settings(wildcards):
    return canonical(flannel.config.sanity_settings(EXPERIMENTS[wildcards.experiment]))


def sanity_targets(experiment):
    return [fill(path, experiment=experiment) for path in (SANITY_REPORT, SANITY_MARKDOWN, SANITY_MANIFEST, VERDICT)]

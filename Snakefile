# flannel: what happens to dead vocabulary tokens while a tiny GPT-2 trains.
# Table of contents: config + validation and the experiments (rules/common.smk), the shared data, then per
# experiment the training runs, the sanity checks, the analyses and figures, and the summary across experiments;
# `rule all` asks for everything the config lists.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/sanity.smk"
include: "rules/figures.smk"
include: "rules/experiments.smk"
include: "rules/cloud.smk"


rule all:
    default_target: True
    input:
        all_targets(),

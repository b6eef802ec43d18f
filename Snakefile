# flannel: what happens to dead vocabulary tokens while a tiny GPT-2 trains.
# Table of contents, in DAG order: start-up, validation, the experiments and the run lists (rules/common.smk), the
# shared data, then per experiment the training runs, the analyses, the sanity checks (which read the Adam
# accounting), the figures and report tables, and the summary across experiments; `rule all` asks for everything
# the config lists.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/analysis.smk"
include: "rules/sanity.smk"
include: "rules/figures.smk"
include: "rules/experiments.smk"


rule all:
    default_target: True
    input:
        all_targets(),

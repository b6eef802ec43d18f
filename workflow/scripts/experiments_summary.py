# The summary across experiments (rule experiments_summary): a row per run, as TSV and HTML, and its figures.
import json

from flannel.logs import script_logging
from flannel.outputs import write_table, write_text
from flannel.report import experiments
from flannel.report.panels import save
from flannel.report.plots_experiments import experiments_dead_cloud, experiments_final_state
from flannel.report.tables import html_table

with script_logging(snakemake.log[0]) as log:
    settings = json.loads(snakemake.params.settings)
    paths = [str(path) for path in snakemake.input.runs]
    # The per-experiment inputs come in the workflow's experiment order (the runs' order); the settings' JSON
    # has its keys sorted, so it cannot name them.
    names = list(dict.fromkeys(experiment for experiment, _tying, _seed in snakemake.params.runs))
    epochs = dict(zip(names, snakemake.input.epochs, strict=True))
    series = {"freeze": dict(zip(names, snakemake.input.freeze, strict=True)),
              "phase_rows": list(snakemake.input.phase_rows), "lifespan": list(snakemake.input.lifespan)}
    summary = experiments.summary_table(snakemake.params.runs, paths, epochs, settings["experiments"], series)
    write_table(summary, snakemake.output.tsv)
    write_text(snakemake.output.html, html_table("Every run of every experiment", tuple(summary.columns),
                                                 list(summary.itertuples(index=False))))
    dpi = settings["figures"]["dpi"]
    save(experiments_dead_cloud(summary, paths, settings), snakemake.output.experiments_dead_cloud, dpi)
    save(experiments_final_state(summary, settings), snakemake.output.experiments_final_state, dpi)
    log.info("summarised %d runs of %d experiments", len(summary), summary["experiment"].nunique())

# The freeze summary of one experiment (rule freeze_summary): one row per run and matrix with the hop
# predictor's precision and recall, the freeze causes' shares, the global-freeze runs, the kinetics and h_mean
# scalars; and per matrix their median and range over the runs.
from flannel.analysis import freeze_summary
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    inputs = {name: list(snakemake.input[name]) for name in ("hops", "causes", "phase_runs", "kinetics", "h_mean")}
    table = freeze_summary.summary_table(snakemake.params.run_ids, inputs)
    write_table(table, snakemake.output.table)
    write_table(freeze_summary.across_runs(table), snakemake.output.across_runs)
    log.info("%s: %d rows", snakemake.output.table, len(table))

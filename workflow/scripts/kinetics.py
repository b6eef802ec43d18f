# One run's kinetics and flow (rule kinetics): per step the dead rows' motion and coherence, per matrix the
# centroid's drift and the velocity autocorrelation's transition.
from flannel.analysis import kinetics
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    steps, runs = kinetics.kinetics_tables(snakemake.input.run)
    for table, path in ((steps, snakemake.output.steps), (runs, snakemake.output.runs)):
        write_table(table, path)
        log.info("%s: %d rows", path, len(table))

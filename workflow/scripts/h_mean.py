# One run's h_mean analysis (rule h_mean): per step h_mean's persistence and swing, its angle to the dead
# centroid's step, each cloud's distance from the origin and bounding radius; per matrix the liftoff and the
# summaries; and the tokens h_mean ranks highest.
from flannel.analysis import h_mean
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    tables = h_mean.h_mean_tables(snakemake.input.run, snakemake.input.tokens, snakemake.params.window)
    for table, path in zip(tables, (snakemake.output.steps, snakemake.output.runs, snakemake.output.tokens)):
        write_table(table, path)
        log.info("%s: %d rows", path, len(table))

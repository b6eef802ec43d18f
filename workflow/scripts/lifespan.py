# One run's lifespans (rule lifespan): per dead row its freeze step against what it started with, and per matrix
# the rank correlations and the dead cloud's contraction along and across its drift.
from flannel.analysis import lifespan
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    rows = lifespan.lifespan_rows(snakemake.input.run, snakemake.input.lattice_rows)
    runs = lifespan.run_table(snakemake.input.run, rows)
    for table, path in ((rows, snakemake.output.rows), (runs, snakemake.output.runs)):
        write_table(table, path)
        log.info("%s: %d rows", path, len(table))

# One run's lattice tables (rule lattice): per step the hop norms and phase fractions, per row its phase starts.
import json

from flannel.analysis import lattice
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    steps, rows = lattice.lattice_tables(snakemake.input.run, json.loads(snakemake.params.settings))
    write_table(steps, snakemake.output.steps)
    write_table(rows, snakemake.output.rows)
    log.info("%s: %d rows; %s: %d rows", snakemake.output.steps, len(steps), snakemake.output.rows, len(rows))

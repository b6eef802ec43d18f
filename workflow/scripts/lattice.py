# One run's lattice tables (rule lattice): per step the hop norms and phase fractions, per row its phase starts.
import json

from flannel import analysis, lattice
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    steps, rows = lattice.lattice_tables(snakemake.input.run, json.loads(snakemake.params.settings))
    analysis.write_table(steps, snakemake.output.steps)
    analysis.write_table(rows, snakemake.output.rows)
    log.info("%s: %d rows; %s: %d rows", snakemake.output.steps, len(steps), snakemake.output.rows, len(rows))

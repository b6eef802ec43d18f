# One run's analysis table (rule analyse_run): one row per recorded step.
import json

from flannel.analysis import per_step
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    # A run left over from another config is refused, naming the differing key.
    table = per_step.analyse_run(snakemake.input.run, expected_config=json.loads(snakemake.params.training))
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

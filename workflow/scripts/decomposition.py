# One seed's tied/untied decomposition table (rule decomposition): is W1 = W2 + E2?
import json

from flannel.analysis import per_step
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    expected = json.loads(snakemake.params.training)  # runs left over from another config are refused
    table = per_step.decomposition(snakemake.input.tied, snakemake.input.untied, expected_config=expected)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

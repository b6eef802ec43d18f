# One seed's tied/untied decomposition table (rule decomposition): is W1 = W2 + E2?
import json

from flannel import analysis
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    expected = json.loads(snakemake.params.training)  # runs left over from another config are refused
    table = analysis.decomposition(snakemake.input.tied, snakemake.input.untied, expected_config=expected)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

# One seed's tied-vs-untied row distances (rule tied_untied_distance): per step the dead and live statistics,
# and every dead row's distance per step for the heatmap.
import json

from flannel.analysis import distances
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    expected = json.loads(snakemake.params.training)  # runs left over from another config are refused
    table, rows = distances.tied_untied(snakemake.input.tied, snakemake.input.untied, expected_config=expected)
    write_table(table, snakemake.output.steps)
    distances.write_rows(rows, snakemake.output.rows)
    log.info("%s: %d rows; %s: %d dead rows", snakemake.output.steps, len(table), snakemake.output.rows, len(rows["tokens"]))

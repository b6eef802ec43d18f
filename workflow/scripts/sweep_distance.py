# The sweep's pairwise row distances (rule sweep_distance): per step and pair of tied runs, dead and live rows apart.
import json

from flannel.analysis import distances
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    expected = json.loads(snakemake.params.training)  # runs left over from another config are refused
    runs = dict(zip(snakemake.params.seeds, snakemake.input.runs, strict=True))
    table = distances.sweep(runs, expected_config=expected)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows (%d runs)", snakemake.output[0], len(table), len(runs))

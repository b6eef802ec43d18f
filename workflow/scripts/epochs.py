# One run's dead-cloud series (rule epochs): per step, the dead radii, their speeds and the dead centroid's,
# smoothed, and the fraction of dead rows still moving.
import json

from flannel.analysis import epochs
from flannel.logs import script_logging
from flannel.outputs import read_table
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    # A run left over from another config is refused, naming the differing key.
    cloud = epochs.dead_cloud_series(snakemake.input.run, expected_config=json.loads(snakemake.params.training))
    rows = read_table(snakemake.input.rows, epochs.ROW_COLUMNS)
    table = epochs.series_table(cloud, rows, snakemake.params.speed_window)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

# The token statistics as a report table (rule token_stats_table).
from flannel.logs import script_logging
from flannel.report import tables

with script_logging(snakemake.log[0]) as log:
    tables.write_token_stats(snakemake.input.stats, snakemake.output[0])
    log.info("wrote %s", snakemake.output[0])

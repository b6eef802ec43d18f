# One run's Adam accounting table (rule adam_accounting): the replay of every step and the lost updates.
from flannel import adam, analysis
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    table = adam.adam_accounting(snakemake.input.run)
    analysis.write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

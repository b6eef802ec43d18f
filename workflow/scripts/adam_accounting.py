# One run's Adam accounting table (rule adam_accounting): the replay of every step and the lost updates.
from flannel.analysis import adam
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    table = adam.adam_accounting(snakemake.input.run)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

# One seed's tied/untied decomposition table (rule decomposition): is W1 = W2 + E2?
from flannel import analysis
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    table = analysis.decomposition(snakemake.input.tied, snakemake.input.untied)
    analysis.write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

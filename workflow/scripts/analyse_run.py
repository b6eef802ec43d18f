# One run's analysis table (rule analyse_run), or one tied/untied pair's decomposition table (rule decomposition).
from flannel import analysis
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    if snakemake.rule == "decomposition":
        table = analysis.decomposition(snakemake.input.tied, snakemake.input.untied)
    else:
        table = analysis.analyse_run(snakemake.input.run)
    analysis.write_table(table, snakemake.output[0])
    log.info("%s: %d rows, %d columns", snakemake.output[0], *table.shape)

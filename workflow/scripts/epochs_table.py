# The epochs of the dead cloud across runs (rule epochs_table): one row per run and matrix, the median and
# range per matrix, and the report's HTML table.
from flannel.analysis import epochs
from flannel.logs import script_logging
from flannel.outputs import write_table, write_text
from flannel.report import tables

with script_logging(snakemake.log[0]) as log:
    table = epochs.epoch_table(snakemake.params.run_ids, list(snakemake.input.series), list(snakemake.input.rows),
                               snakemake.params.freeze_fraction, snakemake.params.speed_window)
    overview = epochs.summary(table)
    write_table(table, snakemake.output.table)
    write_table(overview, snakemake.output.summary)
    header, rows = epochs.report_rows(table, overview)
    title = epochs.report_title(snakemake.params.speed_window, snakemake.params.freeze_fraction)
    write_text(snakemake.output.report, tables.html_table(title, header, rows))
    log.info("%s: %d rows; %s: %d rows", snakemake.output.table, len(table), snakemake.output.summary, len(overview))

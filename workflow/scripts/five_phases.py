# One run's five phases (rule five_phases): per step the phase fractions and reheats, per row its boundaries,
# and the global-freeze runs of the dead rows.
from flannel.analysis import five_phases
from flannel.logs import script_logging
from flannel.outputs import write_table

with script_logging(snakemake.log[0]) as log:
    steps, rows, runs = five_phases.phase_tables(snakemake.input.run)
    for table, path in ((steps, snakemake.output.steps), (rows, snakemake.output.rows), (runs, snakemake.output.runs)):
        write_table(table, path)
        log.info("%s: %d rows", path, len(table))

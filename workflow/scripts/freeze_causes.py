# One run's freeze causes (rule freeze_causes): per row its status, freeze step and the counterfactuals that
# would have kept it hopping.
from flannel.analysis import freeze_causes, hop_condition
from flannel.logs import script_logging
from flannel.outputs import write_table
from flannel.recording import Recording

with script_logging(snakemake.log[0]) as log:
    reason = hop_condition.why_not(Recording(snakemake.input.run), grads=True)
    rows = freeze_causes.cause_rows(snakemake.input.run)
    write_table(rows, snakemake.output[0])
    log.info("%s: %d rows%s", snakemake.output[0], len(rows), f" (none evaluated: {reason})" if reason else "")

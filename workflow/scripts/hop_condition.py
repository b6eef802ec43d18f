# One run's hop condition (rule hop_condition): per step, the closed-form predictor's hops against the observed
# ones, Adam's term and the update in ulps.
from flannel.analysis import hop_condition
from flannel.logs import script_logging
from flannel.outputs import write_table
from flannel.recording import Recording

with script_logging(snakemake.log[0]) as log:
    reason = hop_condition.why_not(Recording(snakemake.input.run))
    table = hop_condition.hop_table(snakemake.input.run)
    write_table(table, snakemake.output[0])
    log.info("%s: %d rows%s", snakemake.output[0], len(table), f" (no hops evaluated: {reason})" if reason else "")

# The report's tables of one experiment (rule report_tables): one summary row per run, the first step explained,
# and the findings page (notebook 1.20b's next steps and the series' open questions answered).
from flannel.logs import script_logging
from flannel.report import tables

with script_logging(snakemake.log[0]) as log:
    tables.write_run_summary(snakemake.params.run_ids, list(snakemake.input.runs), snakemake.output.run_summary)
    tables.write_first_step(snakemake.params.run_ids, list(snakemake.input.runs), snakemake.params.n_embd,
                            snakemake.output.first_step)
    tables.write_findings(snakemake.params.run_ids, list(snakemake.input.runs), list(snakemake.input.decomposition),
                          list(snakemake.input.lifespan), snakemake.output.findings)
    log.info("wrote %s, %s and %s", snakemake.output.run_summary, snakemake.output.first_step, snakemake.output.findings)

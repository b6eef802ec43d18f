# The token explorer of one run (rule explorer): flannel.report.explorer gathers its data from the run file, its
# lattice rows table and the token table; flannel.report.explorer_page writes the page.
import json

from flannel.logs import script_logging
from flannel.outputs import write_text
from flannel.report import explorer, explorer_page

with script_logging(snakemake.log[0]) as log:
    label = f"{snakemake.wildcards.experiment}: {snakemake.wildcards.tying} seed {snakemake.wildcards.seed}"
    data = explorer.explorer_data(snakemake.input.run, snakemake.input.rows, snakemake.input.tokens, label,
                                  json.loads(snakemake.params.settings))
    write_text(snakemake.output.page, explorer_page.render(data))
    log.info("wrote %s: %d tokens, %d steps", snakemake.output.page, len(data["tokens"]["id"]), len(data["steps"]))

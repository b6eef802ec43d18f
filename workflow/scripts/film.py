# The film of one run (rule film): flannel.report.film draws it from the run file and its lattice rows table, and
# the page that shows it in the report.
import json

from flannel.logs import script_logging
from flannel.outputs import write_text
from flannel.report import film

with script_logging(snakemake.log[0]) as log:
    frames = film.draw_film(snakemake.input.run, snakemake.input.rows, snakemake.output.film,
                            json.loads(snakemake.params.settings))
    log.info("wrote %s: %d frames", snakemake.output.film, frames)
    title = f"Film of {snakemake.wildcards.experiment}: {snakemake.wildcards.tying} seed {snakemake.wildcards.seed}"
    write_text(snakemake.output.page, film.film_page(snakemake.output.film, title))

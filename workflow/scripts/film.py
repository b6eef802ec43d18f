# The film of one run (rule film): flannel.report.film draws it from the run file and its lattice rows table.
import json

from flannel.logs import script_logging
from flannel.report import film

with script_logging(snakemake.log[0]) as log:
    frames = film.draw_film(snakemake.input.run, snakemake.input.rows, snakemake.output.film,
                            json.loads(snakemake.params.settings))
    log.info("wrote %s: %d frames", snakemake.output.film, frames)

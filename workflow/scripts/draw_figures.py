# Every figure of one experiment (rule figures): each named output is drawn as flannel.report.figures registers it.
import json

from flannel.logs import script_logging
from flannel.report import figures

with script_logging(snakemake.log[0]) as log:
    # Named inputs arrive as Snakemake's Namedlists; the package takes plain lists of paths.
    inputs = {name: [paths] if isinstance(paths, str) else [str(path) for path in paths]
              for name, paths in snakemake.input.items()}
    settings = json.loads(snakemake.params.settings)
    for name, output in snakemake.output.items():
        reason = figures.draw(name, inputs, settings, output)
        log.info("drew %s%s", output, f" as a card: {reason}" if reason else "")

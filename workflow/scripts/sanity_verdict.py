# The verdict (rule sanity_verdict): fails the workflow when a reproducibility check failed and
# sanity.fail_on_reproducibility is set; a job of its own, so the report it reads stays on disk.
import json
from pathlib import Path

from flannel.logs import script_logging
from flannel.outputs import write_text
from flannel.sanity.report import enforce

with script_logging(snakemake.log[0]) as log:
    report = json.loads(Path(snakemake.input.report).read_text(encoding="utf-8"))
    verdict = enforce(report, snakemake.params.fail)
    log.info("%s", verdict)
    write_text(snakemake.output[0], verdict + "\n")

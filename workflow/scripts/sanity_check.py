# Both sanity rules: sanity_check writes the report; sanity_verdict reads it and fails the workflow when a
# reproducibility check failed and sanity.fail_on_reproducibility is set (a job of its own, so the report
# survives: Snakemake deletes the outputs of a failed job).
import json
import re
from pathlib import Path

from flannel import checks
from flannel.logs import script_logging
from flannel.outputs import write_text

with script_logging(snakemake.log[0]) as log:
    if snakemake.rule == "sanity_verdict":
        report = json.loads(Path(snakemake.input[0]).read_text(encoding="utf-8"))
        try:
            verdict = checks.enforce(report, snakemake.params.fail)
        except checks.ReproducibilityError as error:
            log.error("%s", error)
            raise SystemExit(1) from None
        log.info("%s", verdict)
        write_text(snakemake.output[0], verdict + "\n")
    else:
        config = snakemake.config

        def by_run(paths):
            """(tying, seed) of results/.../{tying}/seed{seed}.safetensors."""
            keys = [re.search(r"(tied|untied)/seed(\d+)\.safetensors$", p).groups() for p in paths]
            return {(tying, int(seed)): path for (tying, seed), path in zip(keys, paths)}

        report = checks.sanity_report(
            config, runs=by_run(snakemake.input.runs), replicas=by_run(snakemake.input.replicas), masks=snakemake.input.masks,
            legacy_flannel1=snakemake.input.get("legacy_flannel1"), legacy_flannel3=snakemake.input.get("legacy_flannel3"),
            legacy_masks=snakemake.input.get("legacy_masks"))
        checks.write_report(report, snakemake.output.json, snakemake.output.md, snakemake.output.manifest)
        log.info("sanity checks %s", "passed" if report["passed"] else "FAILED")
        for failure in report["reproducibility"]["failures"]:
            log.warning("%s", failure)

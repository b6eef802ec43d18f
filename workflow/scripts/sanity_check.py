# The sanity report (rule sanity_check): the checks on the runs, their replicas and any legacy files. It never
# fails on a verdict; rule sanity_verdict does, so the report survives a failed check.
import json

from flannel.logs import script_logging
from flannel.sanity.render import write_report
from flannel.sanity.report import sanity_report

with script_logging(snakemake.log[0]) as log:
    params, inputs = snakemake.params, snakemake.input
    report = sanity_report(
        json.loads(params.settings),
        runs={(tying, seed): path for (tying, seed), path in zip(params.run_ids, inputs.runs)},
        replicas={(tying, seed): path for (tying, seed), path in zip(params.replica_ids, inputs.replicas)},
        accounting={(tying, seed): path for (tying, seed), path in zip(params.run_ids, inputs.accounting)},
        masks=inputs.masks, expected_config=json.loads(params.training),
        legacy_flannel1=inputs.get("legacy_flannel1"), legacy_flannel3=inputs.get("legacy_flannel3"),
        legacy_masks=inputs.get("legacy_masks"))
    write_report(report, snakemake.output.json, snakemake.output.md, snakemake.output.manifest)
    log.info("sanity checks %s", "passed" if report["passed"] else "FAILED")
    for failure in report["reproducibility"]["failures"]:
        log.warning("%s", failure)

# A run file as the notebooks' safetensors (rule export_safetensors), byte for byte what
# `recording.format: safetensors` writes for the same run.
from flannel.logs import script_logging
from flannel.recording import convert_recording

with script_logging(snakemake.log[0]) as log:
    convert_recording(snakemake.input.run, snakemake.output.run)
    log.info("exported %s", snakemake.output.run)

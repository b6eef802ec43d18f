# A config-named input file that nothing provides (rule missing_config_file): one line naming key and file.
from flannel.config import file_not_found
from flannel.logs import script_logging

with script_logging(snakemake.log[0]):
    raise file_not_found(snakemake.params.key, snakemake.output[0])

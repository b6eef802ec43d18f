from safetensors.numpy import load_file

from flannel import data
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    ids = load_file(snakemake.input.token_ids)["token_ids"]
    data.check_windows(ids.size, p.batch_size, p.seq_len, snakemake.input.corpus)
    stats = data.token_stats(snakemake.input.corpus, ids, p.batch_size, p.seq_len, p.steps)
    data.save_stats(stats, snakemake.output[0])
    log.info("%s", stats)

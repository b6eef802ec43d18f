# The corpus encoded once with the tokenizer (rule tokenize).
from flannel import data
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    tokenizer = data.load_tokenizer(snakemake.input.tokenizer, snakemake.params.vocab_size)
    ids = data.tokenize(snakemake.input.corpus, tokenizer, snakemake.params.vocab_size)
    data.save_token_ids(ids, snakemake.output[0])
    log.info("%d tokens (%s) from %s", ids.size, ids.dtype, snakemake.input.corpus)

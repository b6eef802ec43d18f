# The corpus encoded once with the tokenizer (rule tokenize).
from flannel.data import tokens
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer, snakemake.params.vocab_size)
    ids = tokens.tokenize(snakemake.input.corpus, tokenizer, snakemake.params.vocab_size)
    tokens.save_token_ids(ids, snakemake.output[0])
    log.info("%d tokens (%s) from %s", ids.size, ids.dtype, snakemake.input.corpus)

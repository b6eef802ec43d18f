# The live/dead masks in the notebooks' layout and a table of every token (rule live_dead_tokens).
from flannel.data import tokens
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    vocab_size = snakemake.params.vocab_size
    tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer, vocab_size)
    masks = tokens.live_dead(tokens.load_token_ids(snakemake.input.token_ids, vocab_size), vocab_size)
    tokens.save_live_dead(masks, snakemake.output.masks)
    tokens.save_token_table(masks, tokenizer, snakemake.output.table)
    n_dead = int(masks["dead_mask"].sum())
    log.info("live %d, dead %d (%.1f %%) of %d tokens", vocab_size - n_dead, n_dead, 100 * n_dead / vocab_size, vocab_size)

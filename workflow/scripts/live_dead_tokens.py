# The live/dead masks in the notebooks' layout and a table of every token (rule live_dead_tokens).
from flannel import data
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    vocab_size = snakemake.params.vocab_size
    tokenizer = data.load_tokenizer(snakemake.input.tokenizer, vocab_size)
    masks = data.live_dead(data.load_token_ids(snakemake.input.token_ids, vocab_size), vocab_size)
    data.save_live_dead(masks, snakemake.output.masks)
    data.save_token_table(masks, tokenizer, snakemake.output.table)
    n_dead = int(masks["dead_mask"].sum())
    log.info("live %d, dead %d (%.1f %%) of %d tokens", vocab_size - n_dead, n_dead, 100 * n_dead / vocab_size, vocab_size)

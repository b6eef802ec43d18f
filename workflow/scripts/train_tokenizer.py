# A character-level BPE trained to model.vocab_size (rule train_tokenizer), unless the config names a tokenizer.
from flannel.data import tokens
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    tokenizer = tokens.train_tokenizer(snakemake.input.corpus, snakemake.params.vocab_size)
    tokens.save_tokenizer(tokenizer, snakemake.output[0])
    log.info("trained a %d-token character-level BPE on %s", tokenizer.get_vocab_size(), snakemake.input.corpus)

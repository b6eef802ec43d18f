# A character-level BPE trained to model.vocab_size (rule train_tokenizer), unless the config names a tokenizer.
from flannel import data
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    tokenizer = data.train_tokenizer(snakemake.input.corpus, snakemake.params.vocab_size)
    data.save_tokenizer(tokenizer, snakemake.output[0])
    log.info("trained a %d-token character-level BPE on %s", tokenizer.get_vocab_size(), snakemake.input.corpus)

# Token statistics and the honest coverage (rule token_stats); refuses a corpus too short for one batch.
from flannel.data import tokens
from flannel.logs import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    ids = tokens.load_token_ids(snakemake.input.token_ids, p.vocab_size).numpy()
    tokens.check_windows(ids.size, p.batch_size, p.seq_len, snakemake.input.corpus)
    unk_id = tokens.load_tokenizer(snakemake.input.tokenizer, p.vocab_size).token_to_id(tokens.SPECIAL_TOKENS[0])
    stats = tokens.token_stats(snakemake.input.corpus, ids, p.batch_size, p.seq_len, p.steps, unk_id, p.max_unk_share)
    tokens.save_stats(stats, snakemake.output[0])
    log.info("%s", stats)
    if stats["unk_warning"]:
        log.warning("%s", stats["unk_warning"])

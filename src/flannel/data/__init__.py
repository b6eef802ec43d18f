"""The shared data, made once for every experiment: corpus (the generated demo corpora) and tokens (tokenizer,
token ids, live/dead masks, token statistics)."""

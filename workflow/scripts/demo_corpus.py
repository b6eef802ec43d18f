# The generated demo corpora (rule demo_corpus): the model corpus and the tokenizer corpus with its extra material.
from flannel.data.corpus import demo_corpora
from flannel.logs import script_logging
from flannel.outputs import write_text

with script_logging(snakemake.log[0]) as log:
    model_text, tokenizer_text = demo_corpora(snakemake.params.seed, snakemake.params.words, snakemake.params.extra_words)
    write_text(snakemake.output.model, model_text)
    write_text(snakemake.output.tokenizer, tokenizer_text)
    log.info("demo corpora: model %d characters, tokenizer %d characters", len(model_text), len(tokenizer_text))

# The data half: demo corpora (unless the config names a corpus), tokenizer (unless given), token ids,
# token statistics, live/dead masks.


rule demo_corpus:
    output:
        model="results/data/demo/model_corpus.txt",
        tokenizer="results/data/demo/tokenizer_corpus.txt",
    params:
        seed=config["data"]["demo_seed"],
        words=config["data"]["demo_words"],
        extra_words=config["data"]["demo_extra_words"],
        code=code_digest("demo_corpus.py"),
    log:
        "logs/data/demo_corpus.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/demo_corpus.py"


rule train_tokenizer:
    input:
        corpus=tokenizer_corpus_path(),
    output:
        "results/data/tokenizer.json",
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("train_tokenizer.py"),
    log:
        "logs/data/train_tokenizer.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/train_tokenizer.py"


rule tokenize:
    input:
        corpus=corpus_path(),
        tokenizer=tokenizer_path(),
    output:
        "results/data/token_ids.safetensors",
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("tokenize.py"),
    log:
        "logs/data/tokenize.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/tokenize.py"


rule token_stats:
    input:
        corpus=corpus_path(),
        token_ids="results/data/token_ids.safetensors",
        tokenizer=tokenizer_path(),
    output:
        "results/data/token_stats.json",
    params:
        batch_size=config["training"]["batch_size"],
        seq_len=config["training"]["seq_len"],
        steps=config["training"]["steps"],
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("token_stats.py"),
    log:
        "logs/data/token_stats.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/token_stats.py"


rule live_dead_tokens:
    input:
        token_ids="results/data/token_ids.safetensors",
        tokenizer=tokenizer_path(),
    output:
        masks="results/data/live_dead_tokens.safetensors",
        table="results/data/live_dead_tokens.csv",
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("live_dead_tokens.py"),
    log:
        "logs/data/live_dead_tokens.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    script:
        "../workflow/scripts/live_dead_tokens.py"

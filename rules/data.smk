# The data half, made once for every experiment: demo corpora (unless the config names a corpus), tokenizer
# (unless given), token ids, token statistics, live/dead masks.


include: "helpers/data.smk"


# A file the config names but nothing provides: neither on disk, nor made by another rule (a host workflow's,
# when this one is imported as a module; a rule without wildcards takes precedence over this one), nor fetched
# by a storage provider. Its job fails with one line naming the key and the file, when a job needs the file, so
# a dry run still shows the plan. Defined only for files absent at parse time: Snakemake deletes a job's outputs
# before running it, so an existing file must never be one.
if missing_config_files():

    rule missing_config_file:
        output:
            # local: the path is matched as the rules request it, already under a module's prefix.
            local("{path}"),
        log:
            "logs/data/missing_config_file/{path}.log",
        wildcard_constraints:
            path=missing_config_file_pattern(),
        localrule: True
        conda:
            "../envs/flannel.yaml"
        params:
            key=missing_config_file_key,
            code=code_digest("missing_config_file.py"),
        script:
            "../workflow/scripts/missing_config_file.py"


rule demo_corpus:
    output:
        model=DEMO_CORPUS,
        tokenizer=DEMO_TOKENIZER_CORPUS,
    log:
        "logs/data/demo_corpus.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        seed=config["data"]["demo_seed"],
        words=config["data"]["demo_words"],
        extra_words=config["data"]["demo_extra_words"],
        code=code_digest("demo_corpus.py"),
    script:
        "../workflow/scripts/demo_corpus.py"


rule train_tokenizer:
    input:
        corpus=tokenizer_corpus_path(),
    output:
        TOKENIZER,
    log:
        "logs/data/train_tokenizer.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("train_tokenizer.py"),
    script:
        "../workflow/scripts/train_tokenizer.py"


rule tokenize:
    input:
        corpus=corpus_path(),
        tokenizer=tokenizer_path(),
    output:
        TOKEN_IDS,
    log:
        "logs/data/tokenize.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("tokenize.py"),
    script:
        "../workflow/scripts/tokenize.py"


rule token_stats:
    input:
        corpus=corpus_path(),
        token_ids=TOKEN_IDS,
        tokenizer=tokenizer_path(),
    output:
        TOKEN_STATS,
    log:
        "logs/data/token_stats.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        **data_needs(),
        vocab_size=config["model"]["vocab_size"],
        max_unk_share=config["data"]["max_unk_share"],
        code=code_digest("token_stats.py"),
    script:
        "../workflow/scripts/token_stats.py"


rule live_dead_tokens:
    input:
        token_ids=TOKEN_IDS,
        tokenizer=tokenizer_path(),
    output:
        masks=MASKS,
        table=TOKEN_TABLE,
    log:
        "logs/data/live_dead_tokens.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        vocab_size=config["model"]["vocab_size"],
        code=code_digest("live_dead_tokens.py"),
    script:
        "../workflow/scripts/live_dead_tokens.py"


rule token_stats_table:
    input:
        stats=TOKEN_STATS,
    output:
        report(
            TOKEN_STATS_TABLE,
            caption="../workflow/report/token_stats.rst",
            category="Tables",
            labels={"table": "token statistics"},
        ),
    log:
        "logs/data/token_stats_table.log",
    localrule: True
    conda:
        "../envs/flannel.yaml"
    params:
        code=code_digest("token_stats_table.py"),
    script:
        "../workflow/scripts/token_stats_table.py"

# The paths and input/output helpers of rules/data.smk (the linter keeps functions out of rule files).
DEMO_CORPUS = "results/data/demo/model_corpus.txt"
DEMO_TOKENIZER_CORPUS = "results/data/demo/tokenizer_corpus.txt"
TOKENIZER = "results/data/tokenizer.json"
TOKEN_IDS = "results/data/token_ids.safetensors"
TOKEN_STATS = "results/data/token_stats.json"
TOKEN_STATS_TABLE = "results/data/token_stats.html"
MASKS = "results/data/live_dead_tokens.safetensors"
TOKEN_TABLE = "results/data/live_dead_tokens.csv"


def corpus_path():
    return config["data"]["corpus"] or DEMO_CORPUS


def tokenizer_corpus_path():
    return config["data"]["tokenizer_corpus"] or DEMO_TOKENIZER_CORPUS


def tokenizer_path():
    return config["data"]["tokenizer"] or TOKENIZER


def data_needs():
    """The longest batch any experiment draws and its step count: the corpus must hold one such batch."""
    trainings = [experiment["training"] for experiment in EXPERIMENTS.values()]
    return {key: max(training[key] for training in trainings) for key in ("batch_size", "seq_len", "steps")}


def config_files():
    """The input files the config names, by key; null keys name none."""
    keys = {
        "data": ("corpus", "tokenizer", "tokenizer_corpus"),
        "sanity": ("legacy_flannel1", "legacy_flannel3", "legacy_masks"),
    }
    return {
        f"{section}.{key}": config[section][key]
        for section, names in keys.items()
        for key in names
        if config[section][key]
    }


def missing_config_files():
    """Path (as the rules request it: under a module's prefix) -> config key, for each config-named file that is
    absent when the workflow is parsed. None when a default storage provider maps every input: it provides them."""
    if workflow.storage_settings.default_storage_provider is not None:
        return {}
    requested = {
        workflow.modifier.path_modifier.replace_prefix(path): key for key, path in reversed(config_files().items())
    }
    return {path: key for path, key in requested.items() if not os.path.exists(path)}


def missing_config_file_key(wildcards):
    return missing_config_files()[wildcards.path]


def missing_config_file_pattern():
    return "|".join(re.escape(path) for path in missing_config_files())


def data_targets():
    return [TOKEN_STATS, MASKS, TOKEN_TABLE, TOKEN_STATS_TABLE]

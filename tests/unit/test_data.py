"""The data half on small inputs with known answers, and the demo data's determinism."""

import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open

from helpers import ROOT
from flannel.data import tokens
from flannel.data.corpus import demo_corpora, SplitMix64
from flannel.errors import DataError
from flannel.report import tables


def test_splitmix64_matches_the_reference_stream():
    # First outputs for seed 0 from the reference C implementation (Vigna's splitmix64.c).
    rng = SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_demo_corpora_are_deterministic_and_the_tokenizer_corpus_extends_the_model_corpus():
    model_text, tokenizer_text = demo_corpora(7, 3000, 1000)
    assert (model_text, tokenizer_text) == demo_corpora(7, 3000, 1000)
    assert tokenizer_text.startswith(model_text) and len(tokenizer_text) > len(model_text)
    assert set("qxzθ") & set(tokenizer_text) and not set("qxzθ") & set(model_text)
    assert demo_corpora(8, 3000, 1000)[0] != model_text


def test_demo_corpus_bytes_are_the_same_in_another_process():
    code = "from flannel.data.corpus import demo_corpora; import sys; sys.stdout.buffer.write(demo_corpora(3, 5000, 500)[1].encode())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                           env={"PYTHONPATH": str(ROOT / "src"), "PYTHONHASHSEED": "123"}).stdout
    assert other == demo_corpora(3, 5000, 500)[1].encode()


def test_live_dead_masks_on_known_ids():
    masks = tokens.live_dead(np.array([0, 2, 2, 5, 0, 2], dtype=np.uint16), vocab_size=7)
    assert masks["token_occurrence_counts"].tolist() == [2, 0, 3, 0, 0, 1, 0]
    assert masks["live_mask"].tolist() == [True, False, True, False, False, True, False]
    assert torch.equal(masks["dead_mask"], ~masks["live_mask"])
    assert masks["live_indices"].tolist() == [0, 2, 5] and masks["dead_indices"].tolist() == [1, 3, 4, 6]
    assert {k: v.dtype for k, v in masks.items()} == {
        "live_mask": torch.bool, "dead_mask": torch.bool, "live_indices": torch.int64,
        "dead_indices": torch.int64, "token_occurrence_counts": torch.int64}


def test_outputs_get_the_mode_of_a_new_file(tiny_data):
    """safetensors writes 0600; the workflow's outputs are all readable alike (0644 under umask 022)."""
    from flannel.outputs import _umask

    expected = 0o666 & ~_umask()
    for name in ("token_ids.safetensors", "live_dead_tokens.safetensors", "tokenizer.json"):
        assert (tiny_data["folder"] / name).stat().st_mode & 0o777 == expected, name


def test_token_stats_on_known_sizes(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("héllo", encoding="utf-8")
    stats = tokens.token_stats(corpus, np.arange(1000) % 100, batch_size=4, seq_len=10, steps=50, unk_id=0)
    assert stats["bytes"] == 6 and stats["characters"] == 5
    assert stats["unk_tokens"] == 10 and stats["unk_share"] == 0.01
    assert stats["tokens"] == 1000 and stats["training_windows"] == 990
    assert stats["tokens_per_step"] == 40 and stats["notebook_epochs"] == 2.0
    assert stats["windows_drawn"] == 200 and stats["window_coverage"] == round(200 / 990, 6)


def test_tokenizer_training_tokenizing_and_masks(tiny_data, tmp_path):
    config = tiny_data["config"]
    vocab_size = config["model"]["vocab_size"]
    folder = tiny_data["folder"]
    tokenizer = tokens.load_tokenizer(folder / "tokenizer.json", vocab_size)
    assert tokenizer.get_vocab_size() == vocab_size
    ids = tokens.tokenize(folder / "model.txt", tokenizer, vocab_size)
    # Line breaks are read as spaces, on purpose (the notebooks' whitespace pre-tokenizer dropped them too).
    text = (folder / "model.txt").read_text()
    assert "\n" in text[:2000] and tokenizer.decode(ids[:500].tolist()) in text.replace("\n", " ")
    assert ids.dtype == np.uint16 and tokenizer.token_to_id("[UNK]") not in ids.tolist()
    with safe_open(str(folder / "token_ids.safetensors"), "np") as handle:
        assert np.array_equal(handle.get_tensor("token_ids"), ids)
    masks = tiny_data["masks"]
    dead_share = masks["dead_mask"].float().mean().item()
    assert 0.2 <= dead_share <= 0.6
    # A dead token never occurs in the model corpus; every live one does.
    text_ids = set(ids.tolist())
    assert all(i not in text_ids for i in masks["dead_indices"].tolist())
    tokens.save_token_table(masks, tokenizer, tmp_path / "t.csv")
    rows = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "token_id,token,count,live" and len(rows) == vocab_size + 1


def test_training_the_tokenizer_twice_gives_identical_bytes(tiny_data, tmp_path):
    vocab_size = tiny_data["config"]["model"]["vocab_size"]
    tokens.save_tokenizer(tokens.train_tokenizer(tiny_data["folder"] / "tokenizer.txt", vocab_size), tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tiny_data["folder"] / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("content, message", [
    (None, "tokenizer file not found"),
    ("{not json", "not a valid tokenizers JSON"),
    ('{"a": 1}', "not a valid tokenizers JSON"),
])
def test_bad_tokenizer_files(tmp_path, content, message):
    path = tmp_path / "tok.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        tokens.load_tokenizer(path, 400)


def test_tokenizer_size_mismatch_names_both_numbers(tiny_data):
    with pytest.raises(DataError, match=r"tokenizer has 400 tokens but config model.vocab_size is 500"):
        tokens.load_tokenizer(tiny_data["folder"] / "tokenizer.json", 500)


def test_bad_corpora(tmp_path, tiny_data):
    tokenizer = tokens.load_tokenizer(tiny_data["folder"] / "tokenizer.json", 400)
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match="missing.txt: corpus file not found"):
        tokens.tokenize(tmp_path / "missing.txt", tokenizer, 400)
    with pytest.raises(DataError, match="empty.txt: corpus is empty"):
        tokens.tokenize(tmp_path / "empty.txt", tokenizer, 400)
    with pytest.raises(DataError, match="latin1.txt: corpus is not UTF-8"):
        tokens.tokenize(tmp_path / "latin1.txt", tokenizer, 400)
    with pytest.raises(DataError, match="fewer than training.batch_size = 8"):
        tokens.check_windows(39, batch_size=8, seq_len=32, source="short.txt")
    tokens.check_windows(39, batch_size=8, seq_len=4, source="short.txt")  # 35 windows at every offset
    with pytest.raises(DataError, match="short.txt: 39 tokens give 7 disjoint windows of seq_len . 1 = 5 tokens"):
        tokens.check_windows(39, batch_size=8, seq_len=4, source="short.txt", windows="disjoint")


def test_too_small_vocabulary_and_unreachable_vocabulary(tiny_data):
    with pytest.raises(DataError, match="model.vocab_size': 1 leaves no room"):
        tokens.train_tokenizer(tiny_data["folder"] / "tokenizer.txt", 1)
    with pytest.raises(DataError, match=r"tokenizer.txt: the trained BPE has \d+ tokens but config model.vocab_size is 100000"):
        tokens.train_tokenizer(tiny_data["folder"] / "tokenizer.txt", 100000)


def test_token_id_at_or_above_vocab_size_is_refused(tmp_path):
    tokens.save_token_ids(np.array([1, 2, 9], dtype=np.uint16), tmp_path / "ids.safetensors")
    with pytest.raises(DataError, match="token id 9 is not below vocab_size 9"):
        tokens.load_token_ids(tmp_path / "ids.safetensors", 9)


def test_a_byte_order_mark_is_dropped_and_logged(tmp_path, caplog):
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes("\ufeffthe cat sat".encode("utf-8"))
    with caplog.at_level(logging.WARNING, logger="flannel.data.tokens"):
        assert tokens.read_corpus(corpus) == "the cat sat"
    assert "bom.txt: removed the UTF-8 byte-order mark at its start" in caplog.text


def test_a_bom_no_longer_makes_unk_live(tmp_path):
    """The tokenizer corpus has no BOM, so the model corpus's BOM would encode as [UNK]."""
    text = "the cat sat on the mat. " * 200
    (tmp_path / "tokenizer.txt").write_text(text, encoding="utf-8")
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes(("\ufeff" + text).encode("utf-8"))
    tokenizer = tokens.train_tokenizer(tmp_path / "tokenizer.txt", 20)
    ids = tokens.tokenize(corpus, tokenizer, 20)
    assert tokenizer.token_to_id("[UNK]") not in set(ids.tolist())


def test_a_corpus_mostly_unk_warns_in_the_stats_and_the_report_table(tmp_path):
    corpus = tmp_path / "emoji.txt"
    corpus.write_text("🙂 " * 50, encoding="utf-8")
    ids = np.array([0] * 71 + [1] * 29)  # 71 % [UNK] (id 0), as the emoji-only corpus gave
    stats = tokens.token_stats(corpus, ids, batch_size=2, seq_len=4, steps=1, unk_id=0, max_unk_share=0.01)
    assert stats["unk_warning"] == (f"{corpus}: 71.0% of its tokens are [UNK], above data.max_unk_share = 0.01: the "
                                    "tokenizer cannot encode much of this text (another tokenizer or tokenizer corpus?)")
    assert tokens.token_stats(corpus, ids, 2, 4, 1, unk_id=0, max_unk_share=0.8)["unk_warning"] == ""
    tokens.save_stats(stats, tmp_path / "stats.json")
    tables.write_token_stats(tmp_path / "stats.json", tmp_path / "stats.html")
    page = (tmp_path / "stats.html").read_text(encoding="utf-8")
    assert '<p class="warning"><strong>Warning:</strong>' in page and "71.0% of its tokens are [UNK]" in page


def test_a_directory_as_the_corpus_or_tokenizer_is_named_a_directory(tmp_path):
    corpus = tmp_path / "corpus_dir"
    corpus.mkdir()
    with pytest.raises(DataError, match=r"corpus_dir: the corpus is a directory, not a file$"):
        tokens.read_corpus(corpus)
    with pytest.raises(DataError, match=r": the tokenizer is a directory, not a file$"):
        tokens.load_tokenizer(tmp_path, 10)

"""Corpus -> tokenizer -> token ids -> live/dead masks.

A token is live when it occurs anywhere in the tokenized model corpus, dead otherwise. The file layouts
are the notebooks' (`live_dead_tokens.safetensors` keys and dtypes) so their analysis code reads them.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from ..errors import DataError
from ..outputs import atomic_output, write_json

SPECIAL_TOKENS = ["[UNK]"]
BYTE_ORDER_MARK = "\ufeff"
log = logging.getLogger("flannel.data")


def existing_file(path: str | Path, what: str) -> Path:
    """`path`, refused in one line if it is missing or a directory."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: the {what} is a directory, not a file")
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    return path


def read_corpus(path: str | Path) -> str:
    """The corpus text. A UTF-8 byte-order mark at its start is dropped, and the log says so: the tokenizer
    would read it as a character of the text, one [UNK] that turns [UNK] live."""
    path = existing_file(path, "corpus")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: corpus is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if text.startswith(BYTE_ORDER_MARK):
        log.warning("%s: removed the UTF-8 byte-order mark at its start", path)
        text = text[len(BYTE_ORDER_MARK):]
    if not text.strip():
        raise DataError(f"{path}: corpus is empty")
    return text


def train_tokenizer(corpus_path: str | Path, vocab_size: int):
    """A character-level BPE (Metaspace pre-tokenizer, [UNK] for unseen characters) trained to vocab_size.
    Line breaks are read as spaces (a normalizer in the tokenizer itself), on purpose: the notebooks'
    whitespace pre-tokenizer dropped them too, and otherwise every one would encode as [UNK]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise DataError(f"config key 'model.vocab_size': {vocab_size} leaves no room beside the special tokens {SPECIAL_TOKENS}")
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Replace("\n", " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    text = read_corpus(corpus_path)
    tokenizer.train_from_iterator(text.splitlines(), trainer=trainer)
    if tokenizer.get_vocab_size() != vocab_size:
        raise DataError(
            f"{corpus_path}: the trained BPE has {tokenizer.get_vocab_size()} tokens but config model.vocab_size is "
            f"{vocab_size} (too little text to learn that many merges, or more distinct characters than that)"
        )
    return tokenizer


def load_tokenizer(path: str | Path, vocab_size: int):
    """Load a `tokenizers` JSON and insist that its vocabulary has exactly vocab_size tokens."""
    from tokenizers import Tokenizer

    path = existing_file(path, "tokenizer")
    try:
        json.loads(path.read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(path))
    except (ValueError, Exception) as error:  # tokenizers raises a bare Exception on bad JSON
        raise DataError(f"{path}: not a valid tokenizers JSON ({' '.join(str(error).split())[:120]})") from None
    size = tokenizer.get_vocab_size()
    if size != vocab_size:
        raise DataError(f"{path}: tokenizer has {size} tokens but config model.vocab_size is {vocab_size}")
    return tokenizer


def save_tokenizer(tokenizer, path: str | Path) -> None:
    with atomic_output(path) as partial:
        partial.write_text(tokenizer.to_str(pretty=True) + "\n", encoding="utf-8")


def tokenize(corpus_path: str | Path, tokenizer, vocab_size: int) -> np.ndarray:
    """The whole corpus encoded in one call, as the notebooks did, in the smallest unsigned dtype that fits."""
    ids = np.asarray(tokenizer.encode(read_corpus(corpus_path)).ids, dtype=np.int64)
    if ids.size and ids.max() >= vocab_size:
        raise DataError(f"{corpus_path}: token id {int(ids.max())} is not below vocab_size {vocab_size}")
    return ids.astype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def save_token_ids(ids: np.ndarray, path: str | Path) -> None:
    with atomic_output(path) as partial:
        save_numpy({"token_ids": ids}, str(partial))


def load_token_ids(path: str | Path, vocab_size: int) -> torch.Tensor:
    """Token ids as int64, checked against the vocabulary."""
    try:
        ids = load_numpy(str(path))["token_ids"]
    except FileNotFoundError:
        raise DataError(f"{path}: token id file not found") from None
    except Exception as error:
        raise DataError(f"{path}: unreadable token id file ({error})") from None
    if ids.size and int(ids.max()) >= vocab_size:
        raise DataError(f"{path}: token id {int(ids.max())} is not below vocab_size {vocab_size}")
    return torch.from_numpy(ids.astype(np.int64))


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    """The live/dead mask file, with a one-line error naming the file when it is missing or unreadable."""
    from safetensors.torch import load_file

    try:
        masks = load_file(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: mask file not found") from None
    except Exception as error:  # safetensors raises its own error type on a corrupt header
        raise DataError(f"{path}: unreadable mask file ({' '.join(str(error).split())[:120]})") from None
    missing = [key for key in ("live_mask", "dead_mask", "live_indices", "dead_indices") if key not in masks]
    if missing:
        raise DataError(f"{path}: not a live/dead mask file (no {', '.join(missing)})")
    return masks


def token_stats(corpus_path: str | Path, ids: np.ndarray, batch_size: int, seq_len: int, steps: int,
                unk_id: int | None = None, max_unk_share: float = 1.0) -> dict:
    """Sizes, the share of tokens that are the tokenizer's unknown token (`unk_id`; text it could not
    encode) with a warning above `max_unk_share`, and how much of the data the configured steps see. The
    notebooks' "epochs" counted tokens / (batch x seq_len) while sampling a window at every offset; the
    honest coverage is the fraction of distinct windows drawn."""
    text = read_corpus(corpus_path)
    n_bytes, n_tokens = len(text.encode("utf-8")), int(ids.size)
    windows = window_count(n_tokens, seq_len)
    tokens_per_step = batch_size * seq_len
    unk_share = round(float((ids == unk_id).mean()), 6) if unk_id is not None and n_tokens else 0.0
    return {
        "bytes": n_bytes,
        "megabytes": round(n_bytes / 2**20, 3),
        "characters": len(text),
        "tokens": n_tokens,
        "unk_tokens": int((ids == unk_id).sum()) if unk_id is not None else 0,
        "unk_share": unk_share,
        "unk_warning": unk_warning(corpus_path, unk_share, max_unk_share),
        "training_windows": windows,
        "tokens_per_step": tokens_per_step,
        "steps": steps,
        "notebook_epochs": round(steps * tokens_per_step / n_tokens, 4) if n_tokens else 0.0,
        "windows_drawn": min(steps * batch_size, windows),
        "window_coverage": round(min(1.0, steps * batch_size / windows), 6) if windows else 0.0,
    }


def unk_warning(corpus_path, unk_share: float, max_unk_share: float) -> str:
    """A sentence when more of the corpus than `max_unk_share` is [UNK] (the model then trains on one token
    standing for all the text the tokenizer could not encode), else ''."""
    if unk_share <= max_unk_share:
        return ""
    return (f"{corpus_path}: {unk_share:.1%} of its tokens are [UNK], above data.max_unk_share = {max_unk_share:g}: "
            "the tokenizer cannot encode much of this text (another tokenizer or tokenizer corpus?)")


def window_count(n_tokens: int, seq_len: int, windows: str = "every_offset") -> int:
    """How many windows of seq_len + 1 tokens training draws from (training.windows): one at every offset, or
    the corpus cut into consecutive disjoint windows (the remainder unused)."""
    if windows == "disjoint":
        return n_tokens // (seq_len + 1)
    return max(0, n_tokens - seq_len)


def check_windows(n_tokens: int, batch_size: int, seq_len: int, source: str, windows: str = "every_offset") -> None:
    """The corpus must hold at least one full batch of distinct windows of seq_len + 1 tokens."""
    count = window_count(n_tokens, seq_len, windows)
    if count < batch_size:
        kind = "disjoint windows" if windows == "disjoint" else "windows"
        raise DataError(
            f"{source}: {n_tokens} tokens give {count} {kind} of seq_len + 1 = {seq_len + 1} tokens, "
            f"fewer than training.batch_size = {batch_size}"
        )


def live_dead(ids: np.ndarray | torch.Tensor, vocab_size: int) -> dict[str, torch.Tensor]:
    """The notebooks' mask file: live/dead masks (bool [V]), their indices (int64), occurrence counts (int64 [V])."""
    counts = torch.bincount(torch.as_tensor(np.asarray(ids, dtype=np.int64)), minlength=vocab_size)
    live = counts > 0
    return {
        "live_mask": live,
        "dead_mask": ~live,
        "live_indices": torch.nonzero(live).flatten(),
        "dead_indices": torch.nonzero(~live).flatten(),
        "token_occurrence_counts": counts,
    }


def save_live_dead(masks: dict[str, torch.Tensor], path: str | Path) -> None:
    with atomic_output(path) as partial:
        save_torch(masks, str(partial))


def save_token_table(masks: dict[str, torch.Tensor], tokenizer, path: str | Path) -> None:
    """One row per token: id, string, occurrence count, live."""
    counts, live = masks["token_occurrence_counts"].tolist(), masks["live_mask"].tolist()
    with atomic_output(path) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["token_id", "token", "count", "live"])
        for token_id, (count, is_live) in enumerate(zip(counts, live)):
            writer.writerow([token_id, tokenizer.id_to_token(token_id), count, int(is_live)])


def save_stats(stats: dict, path: str | Path) -> None:
    write_json(path, stats)

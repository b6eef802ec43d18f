"""The embedded demo data: an English-like text with Zipfian word frequencies, generated, never downloaded.

Everything here is integer arithmetic on a private SplitMix64 stream, so the bytes are the same on every
machine and Python version (no `random`, no float `pow`). The tokenizer corpus is the model corpus plus
"foreign" text written with letters the model corpus never uses, so the BPE learns tokens that never occur
in the training data: the dead tokens this project studies.
"""

from __future__ import annotations

from bisect import bisect_right

_MASK64 = (1 << 64) - 1

# Common English words head the frequency ranking; they only use the model corpus's letters.
FUNCTION_WORDS = (
    "the of and to a in is that it was for on are as with his they at be this from have or by one had not "
    "but what all were when we there can an your which their said if do will each about how up out them "
    "then she many some so these would other into has more her two like him see time could no make than "
    "first been its who now people my made over did down only way find use may water long little very after"
).split()
MODEL_ONSETS = ("b c d f g h l m n p r s t v w th sh st tr pr br gr pl cl fl ch wh").split()
MODEL_VOWELS = ("a e i o u ea ou ai io").split()
MODEL_CODAS = ("", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "rt", "m")
# The foreign material: letters absent from the model corpus (q, x, z, j, k, y and Greek).
FOREIGN_ONSETS = ("k q x z j kh zy qu ks xy θ φ ψ ξ ζ".split())
FOREIGN_VOWELS = ("y ae oe α ε η ο ω υ".split())
FOREIGN_CODAS = ("", "k", "x", "z", "q", "ξ", "yk")


class SplitMix64:
    """A tiny, fully specified PRNG (Steele et al. 2014)."""

    def __init__(self, seed: int):
        self.state = seed & _MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n


def _lexicon(rng: SplitMix64, size: int, onsets, vowels, codas, head=()) -> list[str]:
    words, seen = list(head), set(head)
    while len(words) < size:
        syllables = 1 + rng.below(3)
        word = "".join(onsets[rng.below(len(onsets))] + vowels[rng.below(len(vowels))] for _ in range(syllables))
        word += codas[rng.below(len(codas))]
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def _zipf_text(rng: SplitMix64, lexicon: list[str], n_words: int) -> str:
    """Sentences of words drawn with weight 1/rank, with capitals, commas, full stops and paragraphs."""
    cumulative, total = [], 0
    for rank in range(1, len(lexicon) + 1):
        total += 10**12 // rank
        cumulative.append(total)
    paragraphs, sentences, words = [], [], []
    sentence_length = 4 + rng.below(14)
    for _ in range(n_words):
        word = lexicon[bisect_right(cumulative, rng.below(total))]
        words.append(word.capitalize() if not words else word)
        if len(words) >= sentence_length:
            sentences.append(" ".join(words) + (".", ".", ".", "?", "!")[rng.below(5)])
            words, sentence_length = [], 4 + rng.below(14)
            if len(sentences) >= 4 + rng.below(5):
                paragraphs.append(" ".join(sentences))
                sentences = []
        elif rng.below(12) == 0:
            words[-1] += ","
    if words:
        sentences.append(" ".join(words) + ".")
    if sentences:
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs) + "\n"


def demo_corpora(seed: int, words: int, extra_words: int) -> tuple[str, str]:
    """Return (model corpus, tokenizer corpus). The tokenizer corpus contains the model corpus."""
    rng = SplitMix64(seed)
    model_text = _zipf_text(rng, _lexicon(rng, 12000, MODEL_ONSETS, MODEL_VOWELS, MODEL_CODAS, FUNCTION_WORDS), words)
    foreign = _lexicon(rng, 6000, FOREIGN_ONSETS, FOREIGN_VOWELS, FOREIGN_CODAS)
    foreign_text = _zipf_text(rng, foreign, extra_words) if extra_words else ""
    return model_text, model_text + foreign_text

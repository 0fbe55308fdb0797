"""Quality gates: repeated steps, word and phrase loops, character loops and truncation. Pure.

Reason codes: ``repeated_steps`` (two steps equal after normalising case, spaces and punctuation, or
near-duplicates by word-bigram Jaccard similarity), ``repetitive_text`` (a word repeated many times in a row,
or a Gopher top/duplicated n-gram character fraction over its limit), ``looping_text`` (compressibility: a
text that deflates far below what prose, tables or code do is mostly one repeated unit, which catches
``KingKingKing…`` and punctuation runs that have no words to count) and ``truncated`` (the model stopped at
its token limit).

The Gopher fractions use datatrove's ``find_all_duplicate`` for duplicated n-grams; the top n-gram figure is
datatrove's ``find_top_duplicate(get_n_grams(...))`` computed on word tuples, because building one string
per n-gram was most of the cost. Words are word-character runs, not datatrove's ``split_into_words``, which loads
a tokenizer per language that these short texts do not need.

Each measure applies only where it means something: n-gram fractions need enough space-separated words (so
Chinese and Japanese text, which has no spaces, and short answers are left to the measures that fit them),
and compressibility needs enough bytes for the format's own overhead not to dominate. The defaults are
written from principles rather than fitted: a degenerate loop repeats its unit at least three times, so more
than half of its characters are copies, while legitimate structure (lists, tables, refrains, templated steps)
repeats short phrases between varying content and stays well under that.
"""

from __future__ import annotations

import re
import string
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import pairwise
from operator import eq
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
NgramSize = Annotated[int, Field(ge=1, le=20)]

_WORD = re.compile(r"\w+")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "，。、；：？！「」『』（）《》…—"})
# Scripts written without spaces between words: word counts mean nothing there.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\uf900-\ufaff]")


@lru_cache(maxsize=8)
def _word_run(repeats: int) -> re.Pattern[str]:
    # One word (letters only) followed by `repeats` copies of itself, separated by whitespace alone:
    # "nine nine nine nine" but not a table's "| yes | yes | yes | yes |" nor a matrix row of zeros.
    return re.compile(rf"\b([^\W\d_]+)(?:\s+\1\b){{{repeats}}}", re.IGNORECASE)


class QualityConfig(BaseModel):
    """Thresholds of the quality gates (see the module docstring for what each measure means)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    near_duplicate_similarity: Fraction = Field(
        default=0.6, description="Word-bigram Jaccard similarity at which two steps are near-duplicates."
    )
    near_duplicate_min_words: int = Field(
        default=5,
        ge=1,
        description="Steps shorter than this are compared exactly only (short parallel steps).",
    )
    max_word_repeats: int = Field(
        default=3, ge=1, le=100, description="Most times a word may appear in a row (whitespace between)."
    )
    ngram_min_words: int = Field(
        default=12, ge=1, description="Texts with fewer space-separated words skip the n-gram fractions."
    )
    top_ngram_fractions: dict[NgramSize, Fraction] = Field(
        default_factory=lambda: {2: 0.5, 3: 0.5, 4: 0.5},
        description="n → most of a text's word characters one n-gram's occurrences may cover.",
    )
    duplicate_ngram_fractions: dict[NgramSize, Fraction] = Field(
        default_factory=lambda: {5: 0.6, 7: 0.55, 10: 0.5},
        description="n → most of a text's word characters that may lie in repeated n-grams.",
    )
    unspaced_share: Fraction = Field(
        default=0.3, description="Share of unspaced-script characters above which word measures are skipped."
    )
    compress_min_bytes: int = Field(
        default=64, ge=16, description="Texts shorter than this (UTF-8 bytes) skip the compressibility check."
    )
    min_compression_ratio: Fraction = Field(
        default=0.25, description="Deflated size / UTF-8 size under which a text is a loop."
    )
    reject_truncated: bool = True


def normalise_text(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: what exact-duplicate steps are compared on."""
    return " ".join(text.lower().translate(_PUNCT).split())


def _bigrams(words: Sequence[str]) -> set[tuple[str, str]]:
    # Padded so a step's first and last words count as much as the middle ones.
    padded = ["\x02", *words, "\x03"]
    return set(pairwise(padded))


def repeated_steps(steps: Sequence[str], config: QualityConfig) -> bool:
    """Whether two steps are the same after normalising, or near-duplicates by word-bigram similarity."""
    normalised = [normalise_text(s) for s in steps]
    seen: set[str] = set()
    for n in normalised:
        if n and n in seen:
            return True
        seen.add(n)
    shingles = [_bigrams(n.split()) for n in normalised if len(n.split()) >= config.near_duplicate_min_words]
    threshold = config.near_duplicate_similarity
    for i, a in enumerate(shingles):
        for b in shingles[i + 1 :]:
            # Jaccard ≤ min/max of the sizes: skip pairs that cannot reach the threshold.
            if min(len(a), len(b)) < threshold * max(len(a), len(b)):
                continue
            if len(a & b) >= threshold * len(a | b):
                return True
    return False


def is_unspaced(text: str, config: QualityConfig) -> bool:
    """Whether the text is mostly in a script without spaces between words (Chinese, Japanese, Thai…)."""
    letters = len(text) - text.count(" ") - text.count("\n")
    return letters > 0 and len(_UNSPACED.findall(text)) > config.unspaced_share * letters


def _top_ngram_chars(words: Sequence[str], n: int) -> tuple[int, int]:
    # datatrove's find_top_duplicate(get_n_grams(words, n)) (count × length of the most common n-gram,
    # joined by single spaces), counted on word tuples: the same figure without building a string per n-gram.
    grams = Counter(zip(*(words[i:] for i in range(n)), strict=False))
    if not grams:
        return 0, 0
    gram, count = grams.most_common(1)[0]
    return count, count * (sum(map(len, gram)) + n - 1)


def _has_word_run(text: str, words: Sequence[str], repeats: int) -> bool:
    # The cheap test on the word list first (the same word `repeats + 1` times in a row, whatever lies
    # between); only then the regex that also asks for nothing but whitespace between them.
    same = bytes(map(eq, words, words[1:]))
    return b"\x01" * repeats in same and _word_run(repeats).search(text) is not None


def repetitive_text(text: str, config: QualityConfig) -> bool:
    """A word repeated more than ``max_word_repeats`` times in a row, or an n-gram fraction over its limit."""
    words = _WORD.findall(text.lower())
    if _has_word_run(text, words, config.max_word_repeats):
        return True
    if len(words) < config.ngram_min_words or is_unspaced(text, config):
        return False
    if sum(map(str.isdigit, words)) * 2 > len(words):
        return False  # mostly numbers: data (a matrix, a list of figures) whose repetition is legitimate
    counts = Counter(words)
    if max(counts.values()) == 1:
        return False  # no word occurs twice: no n-gram can either
    word_chars = len("".join(words))
    spaced_chars = word_chars + len(words) - 1  # n-grams are joined with single spaces
    for n, limit in sorted(config.top_ngram_fractions.items()):
        count, chars = _top_ngram_chars(words, n)
        if chars > limit * spaced_chars and count > 1:
            return True
        if count == 1:
            break  # longer n-grams are unique too
    # Every word of a duplicated n-gram occurs at least twice, so the characters of repeated words bound
    # every duplicate fraction: under the smallest limit, datatrove's scan cannot fire.
    repeated = sum(len(w) * c for w, c in counts.items() if c > 1)
    if repeated <= min(config.duplicate_ngram_fractions.values(), default=1.0) * word_chars:
        return False
    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate

    return any(
        find_all_duplicate(words, n) > limit * word_chars
        for n, limit in config.duplicate_ngram_fractions.items()
    )


class _Deflater(threading.local):
    # One raw-deflate stream per thread, fully flushed after each text: a full flush resets the history, so
    # each text is compressed on its own without paying zlib's set-up (most of the cost of a short text).
    def __init__(self) -> None:
        self.stream = zlib.compressobj(6, zlib.DEFLATED, -15)

    def size(self, data: bytes) -> int:
        return len(self.stream.compress(data) + self.stream.flush(zlib.Z_FULL_FLUSH))


_DEFLATER = _Deflater()


def compression_ratio(text: str) -> float:
    """Raw-deflate size over UTF-8 size (1.0 for an empty text); lone surrogates are measured, not an error."""
    data = text.encode("utf-8", errors="surrogatepass")
    return _DEFLATER.size(data) / len(data) if data else 1.0


def looping_text(text: str, config: QualityConfig) -> bool:
    """Whether a text long enough to judge compresses below ``min_compression_ratio``."""
    if len(text) * 4 < config.compress_min_bytes:  # a character is at most four UTF-8 bytes
        return False
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) < config.compress_min_bytes:
        return False
    return _DEFLATER.size(data) < config.min_compression_ratio * len(data)


def text_reasons(texts: Iterable[str], config: QualityConfig) -> list[str]:
    """``repetitive_text`` / ``looping_text`` when any of the texts fails that measure."""
    reasons: list[str] = []
    pending = list(texts)
    if any(repetitive_text(t, config) for t in pending):
        reasons.append("repetitive_text")
    if any(looping_text(t, config) for t in pending):
        reasons.append("looping_text")
    return reasons


def gate_reasons(
    steps: Sequence[str], answer: str, finish_reason: str | None, config: QualityConfig
) -> list[str]:
    """Every gate reason of one rationale (reasoning steps + answer), empty when it passes."""
    if not config.enabled:
        return []
    reasons = ["repeated_steps"] if len(steps) > 1 and repeated_steps(steps, config) else []
    reasons += text_reasons([*steps, answer], config)
    if config.reject_truncated and finish_reason == "length":
        reasons.append("truncated")
    return reasons

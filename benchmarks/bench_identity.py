"""Cost of the text identity in near-duplicate clustering: identity shingles vs plain case-folded words.

MinHash-LSH clustering of N synthetic prompts (8–40 words, 1 % planted near-duplicates) with
:func:`cotforge.text_identity.match_words` (NFKC, invisibles, confusables, marks) against the plain tokenizer it
replaced (``\\w+`` over the case-folded text), side by side, alternating, CPU time on one core, for ASCII words
(the fast path) and Cyrillic words (every text takes the full path). The last line is the headline:
``ratio: X`` (identity / plain CPU time, the worse alphabet, median of the rounds).
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time
from collections.abc import Callable

from cotforge.ingest import dedup
from cotforge.text_identity import match_words

PROMPTS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
_WORD = re.compile(r"\w+")


def _plain_words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _prompts(alphabet: str) -> list[tuple[str, str]]:
    rng = random.Random(0)
    if alphabet == "ascii":
        words = [f"w{i}" for i in range(20_000)]
    else:
        words = ["".join(rng.choice("абвгдежзиклмнопрстуфхцчшщ") for _ in range(6)) for _ in range(20_000)]
    items = [(f"p{i}", " ".join(rng.choices(words, k=rng.randint(8, 40)))) for i in range(PROMPTS)]
    for i in range(0, PROMPTS, 100):  # a copy with one word appended
        items[i + 1] = (items[i + 1][0], items[i][1] + " please")
    return items


def _cpu(items: list[tuple[str, str]], words: Callable[[str], list[str]]) -> tuple[float, int]:
    dedup.match_words = words  # type: ignore[assignment]
    start = time.process_time()
    clusters = dedup.near_duplicate_clusters(items)
    return time.process_time() - start, len(clusters)


def main() -> None:
    ratios = []
    for alphabet in ("ascii", "cyrillic"):
        items = _prompts(alphabet)
        per_round = []
        for _ in range(ROUNDS):
            plain_s, plain_n = _cpu(items, _plain_words)
            identity_s, identity_n = _cpu(items, match_words)
            per_round.append(identity_s / plain_s)
            print(
                f"{alphabet}: {PROMPTS} prompts, plain {plain_s:.2f} s CPU ({plain_n} clustered), "
                f"identity {identity_s:.2f} s CPU ({identity_n} clustered)"
            )
        ratios.append(statistics.median(per_round))
        print(f"{alphabet}: median ratio {ratios[-1]:.2f}")
    dedup.match_words = match_words
    print(f"ratio: {max(ratios):.2f}")


if __name__ == "__main__":
    main()

"""Near-duplicate prompts: MinHash-LSH (``datasketch``) over word shingles, clustered with union-find.

The core is pure (texts in → cluster ids out). Ingest calls :func:`near_duplicate_clusters` over every prompt
in the run (all sources together) and writes the clusters beside ``prompts.jsonl``; the ledger keeps the
cluster id of each prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from pydantic import BaseModel, ConfigDict, Field

from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.text_identity import identity_text, match_words

CLUSTERS_FILE = RunFiles.PROMPT_CLUSTERS
NUM_PERM = 64
THRESHOLD = 0.7
SHINGLE = 3

# One fixed permutation set, built once: MinHash() would rebuild it for every prompt.
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=1)


class NearDuplicate(BaseModel):
    """One prompt in a cluster of near-duplicates (clusters of one are not written)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_id: str
    cluster_id: str = Field(description="The id of the cluster's first prompt (in input order).")
    size: int = Field(ge=2)


def shingles(text: str, n: int = SHINGLE) -> set[bytes]:
    """Word n-grams of the text's identity (:func:`~cotforge.text_identity.match_words`: case, accents,
    invisible and look-alike characters do not count); a text without words is its own single shingle."""
    words = match_words(text)
    if not words:  # "???" and "!!!" are not the same text
        return {identity_text(text).encode("utf-8", "surrogatepass")}
    grams = [words] if len(words) < n else [words[i : i + n] for i in range(len(words) - n + 1)]
    return {" ".join(gram).encode("utf-8", "surrogatepass") for gram in grams}


def signature_of(shingle_set: set[bytes]) -> LeanMinHash:
    """The MinHash signature of a shingle set (same permutations for every set)."""
    m = MinHash(num_perm=NUM_PERM, seed=1, permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme)
    m.update_batch(list(shingle_set))
    return LeanMinHash(m)


def signature(text: str) -> LeanMinHash:
    """The MinHash signature of one text's :func:`shingles`."""
    return signature_of(shingles(text))


def near_duplicate_clusters(
    items: Iterable[tuple[str, str]], threshold: float = THRESHOLD
) -> list[NearDuplicate]:
    """Cluster ``(id, text)`` items whose estimated Jaccard similarity of shingles reaches ``threshold``
    (shingles of the texts' identity: a copy with look-alike letters or invisible characters clusters too).

    Returns one entry per prompt in a cluster of two or more; the cluster id is its first member's id.
    """
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    ids: list[str] = []
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for item_id, text in items:
        sig = signature(text)
        index = len(ids)
        ids.append(item_id)
        parent.append(index)
        for other in lsh.query(sig):
            a, b = find(index), find(int(other))
            if a != b:
                parent[max(a, b)] = min(a, b)
        lsh.insert(str(index), sig, check_duplication=False)
    roots = np.array([find(i) for i in range(len(ids))], dtype=np.int64)
    sizes = np.bincount(roots, minlength=len(ids)) if len(ids) else np.array([], dtype=np.int64)
    return [
        NearDuplicate(prompt_id=ids[i], cluster_id=ids[int(root)], size=int(sizes[root]))
        for i, root in enumerate(roots)
        if sizes[root] > 1
    ]


def read_clusters(run_dir: str | Path) -> dict[str, NearDuplicate]:
    """Prompt id → its cluster, from the run's clusters file (empty when ingest found none)."""

    path = Path(run_dir) / CLUSTERS_FILE
    if not path.is_file():
        return {}
    return {c.prompt_id: c for c in read_jsonl(path, NearDuplicate)}


def cluster_ids(items: Sequence[NearDuplicate]) -> dict[str, str]:
    """Prompt id → cluster id."""
    return {c.prompt_id: c.cluster_id for c in items}

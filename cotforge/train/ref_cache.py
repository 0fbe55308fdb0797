"""A disk cache of per-segment reference log-prob sums, so a reference forward pass is paid once per pair.

TRL's ``precompute_ref_log_probs`` keeps its result in the ``datasets`` cache of the in-memory training set,
which lives and dies with the process: every AW-DPO run and every arm of a sweep pays the reference pass again.
Here each pair's four sums (chosen/rejected × reasoning/answer) are stored in SQLite under a key that covers
everything they depend on: the reference model's weights (without LoRA weights: a LoRA policy's reference is
its base), the token ids of prompt and completions, their segment ids, and the truncation. A change to any part
is a miss, never a stale hit. The same file holds the ``tis`` aggregation's token weights (another table,
keyed by the contrastive models and the tokens they weigh).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cotforge.serving.cache_dirs import user_cache_dir

TABLES = ("ref_logps", "tis_weights")
_CHUNK = 500
# A folder for the cache instead of the user cache (a benchmark times a cold cache this way).
REF_CACHE_DIR_ENV = "COTFORGE_REF_CACHE_DIR"
KEY_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids", "chosen_segment_ids", "rejected_segment_ids")


def reference_identity(model: Any) -> str:
    """SHA-256 of the reference weights: every parameter and buffer except LoRA's own (a LoRA policy's
    reference is its base model, whatever the adapter's random initialisation)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name or "modules_to_save" in name:
            continue
        data = tensor.detach().cpu()
        if data.dtype in (torch.bfloat16, torch.float16):
            data = data.to(torch.float32)
        # peft renames wrapped layers (base_model.model.…, ….base_layer.…); the weights are the base's.
        digest.update(name.removeprefix("base_model.model.").replace(".base_layer.", ".").encode())
        digest.update(str(tuple(data.shape)).encode())
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def row_key(identity: str, row: Mapping[str, Any], max_length: int | None, truncation_mode: str) -> str:
    """The cache key of one tokenised pair under one reference model and truncation (and the pair's token
    weights, when the row carries them: the reference sums are then weighted too)."""
    weights = [list(row[c]) for c in ("chosen_token_weights", "rejected_token_weights") if c in row]
    payload = [identity, max_length, truncation_mode, *(list(row[c]) for c in KEY_COLUMNS), *weights]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


class RefLogpCache:
    """``key → [[chosen_rs, chosen_rp], [rejected_rs, rejected_rp]]`` in one SQLite file (WAL); with
    ``table="tis_weights"``, ``key → [chosen token weights, rejected token weights]``.

    Default file: ``$COTFORGE_REF_CACHE_DIR/ref_logps.sqlite`` when set, else the user cache's ``ref-logps``.
    """

    def __init__(self, path: Path | None = None, table: str = "ref_logps") -> None:
        if table not in TABLES:
            raise ValueError(f"table must be one of {TABLES}, got {table!r}")
        self.table = table
        folder = os.environ.get(REF_CACHE_DIR_ENV)
        default = Path(folder) if folder else user_cache_dir("ref-logps")
        self.path = path or default / "ref_logps.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, sums TEXT NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, list[list[float]]]:
        """The stored value of every key found."""
        found: dict[str, list[list[float]]] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = list(keys[i : i + _CHUNK])
            marks = ",".join("?" * len(chunk))
            for key, sums in self._db.execute(
                f"SELECT key, sums FROM {self.table} WHERE key IN ({marks})", chunk
            ):
                found[key] = json.loads(sums)
        return found

    def put_many(self, items: Iterable[tuple[str, list[list[float]]]]) -> None:
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {self.table} (key, sums) VALUES (?, ?)",
                ((k, json.dumps(v)) for k, v in items),
            )

    def close(self) -> None:
        self._db.close()

"""`trace`: one prompt's fate read from ``ledger.parquet`` through its row-group statistics, not a scan.

The ledger is sorted by prompt id and written in small row groups, so a filter on ``prompt_id`` opens only
the one or two groups whose min/max can hold the id. An id that is not a prompt id (a variant, sample,
candidate or pair id) is looked up in the ``record_id``/``variant_id`` columns and mapped to its prompt.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cotforge.errors import CotforgeError


class TraceError(CotforgeError):
    """A trace that cannot be answered: an unknown id (with close ids) or a missing ledger."""


def _rows(ledger: Path, column: str, value: str) -> list[dict[str, Any]]:
    try:
        table = pq.read_table(ledger, filters=[(column, "=", value)])
    except (pa.ArrowException, OSError) as exc:
        raise TraceError(
            f"{ledger}: cannot be read ({exc}); rebuild it with `cotforge trace {ledger.parent} --rebuild`",
            file=ledger,
        ) from None
    return table.to_pylist()


def close_ids(ledger: Path, wanted: str, n: int = 5) -> list[str]:
    """Prompt and record ids that look like ``wanted`` (difflib), for an error message."""
    dataset = ds.dataset(ledger)
    ids: set[str] = set()
    for column in ("prompt_id", "record_id"):
        ids.update(v for v in pc.unique(dataset.to_table(columns=[column]).column(column)).to_pylist() if v)
    # Same-prefix ids first: difflib over every id of a 100k-record run is slow and prefixes are kinds.
    prefix = wanted.split("-", 1)[0] + "-" if "-" in wanted else ""
    pool = [i for i in ids if i.startswith(prefix)] or list(ids)
    return difflib.get_close_matches(wanted, pool, n=n, cutoff=0.5)


def trace_rows(ledger: str | Path, record_id: str) -> list[dict[str, Any]]:
    """The ledger rows of the prompt that ``record_id`` names (a prompt, variant, sample, candidate or pair id).

    Raises :class:`TraceError` naming close ids when nothing matches.
    """
    path = Path(ledger)
    if not path.is_file():
        raise TraceError(f"{path}: no ledger; run `cotforge trace {path.parent}` to build it")
    rows = _rows(path, "prompt_id", record_id)
    if not rows:
        for column in ("variant_id", "record_id"):
            hits = _rows(path, column, record_id)
            if hits:
                rows = _rows(path, "prompt_id", hits[0]["prompt_id"])
                break
    if not rows:
        close = close_ids(path, record_id)
        hint = f"close ids: {', '.join(close)}" if close else "no id in the ledger looks like it"
        raise TraceError(
            f"{record_id!r} is not a prompt, variant, sample, candidate or pair id of this run ({hint}); "
            f"`cotforge trace {path.parent}` lists where prompts stopped"
        )
    return rows

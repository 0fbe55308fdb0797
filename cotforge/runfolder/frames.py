"""pandas view of a run-folder JSONL file, for analysis in a notebook: the file stays the source of truth.

pandas is imported when a frame is asked for, so importing cotforge stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotforge.errors import CotforgeError

if TYPE_CHECKING:
    import pandas as pd


def records_frame(path: str | Path) -> pd.DataFrame:
    """A JSONL file as a DataFrame, one row per line, nested objects as ``parent.child`` columns."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CotforgeError(f"{path}: not found; run the stage that writes it first")
    rows: list[dict[str, Any]] = []
    # Split on "\n" only: model text may hold U+2028, which str.splitlines() would treat as a line end. utf-8-sig
    # drops a byte-order mark an editor added, as read_jsonl does.
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CotforgeError(
                f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or remove the line, or re-run the stage "
                "that wrote the file"
            ) from None
        if not isinstance(row, dict):
            raise CotforgeError(f"{path}:{lineno}: expected a JSON object per line")
        rows.append(row)
    return pd.json_normalize(rows) if rows else pd.DataFrame()

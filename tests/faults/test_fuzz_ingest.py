"""Fuzzing the ingest readers: whatever bytes a prompt file holds, every non-blank row comes out as a prompt
or as a reject with a reason, and nothing raises but cotforge's own error type."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cotforge.errors import CotforgeError
from cotforge.ingest.rows import IngestConfig, RawRow, ingest_rows
from cotforge.ingest.sources import read_rows

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIG = IngestConfig(kind="safety")

# Text that stresses normalisation: controls, NUL, BOM, line/paragraph separators, surrogate-free unicode.
_nasty = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["\x00", "\ufeff", "\u2028", "\u2029", "\r", "\t", '"', ",", "\\"]),
    ),
    max_size=80,
)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _nasty,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_nasty, inner, max_size=3),
    max_leaves=8,
)
_line_ending = st.sampled_from([b"\n", b"\r\n", b"\r"])


def _accounted(result, n_rows: int) -> None:  # type: ignore[no-untyped-def]
    # Exact duplicates are rejects too (reason "duplicate"), so prompts + rejects covers every row.
    assert len(result.prompts) + len(result.rejects) == n_rows
    for reject in result.rejects:
        assert reject.reasons and reject.message and reject.line is not None


def _ingest(path: Path):  # type: ignore[no-untyped-def]
    try:
        return ingest_rows(read_rows(str(path)), CONFIG)
    except CotforgeError:
        return None  # a whole-source error with a message is an allowed outcome


@FUZZ
@given(
    rows=st.lists(
        st.one_of(
            st.fixed_dictionaries({"prompt": _nasty}),
            st.dictionaries(_nasty, _json_value, max_size=3),
            _json_value,
        ),
        max_size=12,
    ),
    junk=st.lists(st.binary(max_size=40), max_size=4),
    ending=_line_ending,
    bom=st.booleans(),
)
def test_jsonl_every_line_is_a_prompt_or_a_reject(
    tmp_path: Path, rows: list[object], junk: list[bytes], ending: bytes, bom: bool
) -> None:
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in rows] + junk
    data = (b"\xef\xbb\xbf" if bom else b"") + ending.join(lines) + ending
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    result = _ingest(path)
    if result is None:
        return
    # What the reader counts as a row: every non-blank line between "\n"s (a leading byte-order mark is no row).
    n_rows = sum(1 for raw in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if raw.strip())
    _accounted(result, n_rows)


@FUZZ
@given(
    rows=st.lists(st.lists(_nasty, min_size=0, max_size=4), max_size=10),
    junk=st.binary(max_size=60),
)
def test_csv_every_row_is_a_prompt_or_a_reject(tmp_path: Path, rows: list[list[str]], junk: bytes) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["prompt", "category"])
    for row in rows:
        writer.writerow(row)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8") + junk)
    result = _ingest(path)
    if result is None:
        return
    assert (
        len(result.prompts) + len(result.rejects) >= sum(1 for r in rows if any(f.strip() for f in r)) - 1
    )  # junk bytes may merge into the last row; never more rows lost than that one
    for reject in result.rejects:
        assert reject.reasons and reject.message


@FUZZ
@given(prompts=st.lists(st.one_of(st.none(), _nasty), min_size=1, max_size=10))
def test_parquet_every_row_is_a_prompt_or_a_reject(tmp_path: Path, prompts: list[str | None]) -> None:
    path = tmp_path / "fuzz.parquet"
    pq.write_table(pa.table({"prompt": pa.array(prompts, type=pa.string())}), path)
    result = _ingest(path)
    assert result is not None
    _accounted(result, len(prompts))


def test_deeply_nested_jsonl_row_is_rejected_and_the_others_kept(tmp_path: Path) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    path = tmp_path / "deep.jsonl"
    path.write_text(
        json.dumps({"prompt": "How do I bake bread?"}) + "\n" + '{"prompt": ' + deep + "}\n"
        + json.dumps({"prompt": "How do I boil an egg?"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    result = ingest_rows(read_rows(str(path)), CONFIG)
    assert len(result.prompts) == 2
    assert len(result.rejects) == 1 and result.rejects[0].line == 2


# Dressing a text up: invisible characters after any letter, Cyrillic/Greek look-alikes for Latin letters.
_INVISIBLE = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
_LOOK_ALIKE = {
    "a": "а",
    "c": "с",
    "e": "е",
    "o": "о",
    "p": "р",
    "x": "х",
    "y": "у",
    "H": "Н",
    "O": "О",
    "B": "В",
}
_words = st.lists(st.text(alphabet="abcdeHOBopxy", min_size=1, max_size=7), min_size=3, max_size=9)


def _dress(text: str, data: st.DataObject) -> str:
    out = []
    for ch in text:
        if ch in _LOOK_ALIKE and data.draw(st.booleans()):
            ch = _LOOK_ALIKE[ch]
        out.append(ch + data.draw(st.sampled_from(["", "", *_INVISIBLE])))
    return "".join(out)


@settings(max_examples=30, deadline=None)
@given(texts=st.lists(_words.map(" ".join), min_size=1, max_size=6), data=st.data())
def test_dressed_up_copies_are_duplicates_and_found_by_contamination(
    texts: list[str], data: st.DataObject
) -> None:
    from cotforge.evaluation.contamination import SuiteItem, find_overlaps

    plain = [RawRow("a", i, {"prompt": t}) for i, t in enumerate(texts, start=1)]
    dressed = [RawRow("b", i, {"prompt": _dress(t, data)}) for i, t in enumerate(texts, start=1)]
    alone = ingest_rows(plain, CONFIG)
    both = ingest_rows([*plain, *dressed], CONFIG)
    assert both.prompts == alone.prompts  # every dressed copy is a duplicate of its plain text
    assert [r.reasons for r in both.rejects[len(alone.rejects) :]] == [["duplicate"]] * len(dressed)
    items = [SuiteItem(suite="s", line=r.line, text=r.data["prompt"]) for r in dressed]  # type: ignore[index]
    found = {o.line: o for o in find_overlaps(alone.prompts, items)}
    by_identity = {p.text: p.id for p in alone.prompts}
    for line, text in enumerate(texts, start=1):
        assert found[line].jaccard == 1.0
        assert by_identity.get(text, found[line].prompt_id) in found[line].prompt_ids

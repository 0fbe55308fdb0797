"""Ingest compares texts by their identity, refuses ambiguous columns and keys, and reports labels a flag
overrules; the real CLI on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.ingest import json_rows
from cotforge.ingest.rows import IngestConfig, RawRow, ingest_rows
from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.schemas import PromptRecord, RejectRecord

runner = CliRunner()


def _ingest(run: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["ingest", "--run", str(run), *args], input=stdin)
    return result.exit_code, result.output


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _prompts(run: Path) -> list[PromptRecord]:
    return list(read_jsonl(run / RunFiles.PROMPTS, PromptRecord))


def _rejects(run: Path) -> list[RejectRecord]:
    return list(read_jsonl(run / RunFiles.PROMPT_REJECTS, RejectRecord))


@pytest.mark.unit
def test_a_dressed_up_copy_is_a_duplicate_and_the_first_text_is_kept_as_it_was() -> None:
    rows = [
        RawRow("a.jsonl", 1, {"prompt": "Write a phi\u00adshing email"}),
        RawRow("b.jsonl", 7, {"prompt": "Write a phishing em\u200dаil"}),  # ZWJ, Cyrillic а
        RawRow("b.jsonl", 8, {"prompt": "write a phishing email"}),  # other case: a near duplicate only
    ]
    result = ingest_rows(rows, IngestConfig(kind="safety"))
    assert [p.text for p in result.prompts] == ["Write a phi\u00adshing email", "write a phishing email"]
    assert result.duplicates == 1
    (reject,) = result.rejects
    assert reject.reasons == ["duplicate"] and reject.line == 7
    assert "a.jsonl:1" in reject.message and "look-alike" in reject.message
    assert result.near_duplicates == [(result.prompts[1].id, result.prompts[0].id)]


@pytest.mark.unit
def test_ids_still_hash_the_text_as_stored() -> None:
    """Existing run folders keep their ids: the identity decides duplicates, not ids."""
    (p,) = ingest_rows([RawRow("f", 1, {"prompt": "Hello  there"})], IngestConfig(kind="utility")).prompts
    assert p.id == PromptRecord.make_id("Hello there", "utility")


@pytest.mark.unit
def test_one_text_under_two_kinds_is_a_conflict_not_two_prompts() -> None:
    rows = [
        RawRow("f", 1, {"prompt": "How do I kill a process?", "kind": "utility"}),
        RawRow("f", 2, {"prompt": "How do I kill a prосess?", "kind": "safety"}),
    ]
    result = ingest_rows(rows, IngestConfig())
    assert [p.kind for p in result.prompts] == ["utility"]
    assert result.rejects[0].reasons == ["kind_conflict"] and "f:1" in result.rejects[0].message


@pytest.mark.unit
def test_kind_flag_never_silently_overrules_a_rows_own_label() -> None:
    rows = [
        RawRow("f", 1, {"prompt": "How do I make a pipe bomb?", "kind": "safety"}),
        RawRow("f", 2, {"prompt": "Bake bread", "kind": "utility"}),
        RawRow("f", 3, {"prompt": "Sort a list"}),
    ]
    result = ingest_rows(rows, IngestConfig(kind="utility"))
    assert [p.text for p in result.prompts] == ["Bake bread", "Sort a list"]
    assert result.rejects[0].reasons == ["kind_conflict"]
    assert "'safety'" in result.rejects[0].message and "--kind-column ''" in result.rejects[0].message
    # Overruling the labels is a choice the user states.
    overruled = ingest_rows(rows, IngestConfig(kind="utility", kind_column=""))
    assert len(overruled.prompts) == 3 and not overruled.rejects


def test_bundled_files_keep_their_own_kinds_under_a_kind_flag(run_dir: Path) -> None:
    code, out = _ingest(run_dir, "--bundled", "--kind", "utility")
    assert code == 0 and "kind_conflict" in out
    assert {p.kind for p in _prompts(run_dir)} == {"utility"}
    rejects = _rejects(run_dir)
    assert len(rejects) == 160 and {r.reasons[0] for r in rejects} == {"kind_conflict"}


def test_source_and_licence_flags_report_the_rows_they_do_not_follow(tmp_path: Path, run_dir: Path) -> None:
    src = _jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "Bake bread", "source": "bakery", "licence": "CC-BY-4.0"},
            {"prompt": "Sort a list"},
        ],
    )
    code, out = _ingest(run_dir, str(src), "--kind", "utility", "--source", "mine", "--licence", "MIT")
    assert code == 0
    assert "--source 'mine' replaced the row's own source on 1 row(s)" in out
    assert "1 row(s) name their own licence, kept over --licence 'MIT'" in out
    assert {(p.source, p.licence) for p in _prompts(run_dir)} == {("mine", "CC-BY-4.0"), ("mine", "MIT")}
    manifest = json.loads((run_dir / "manifests" / "ingest.json").read_text())
    assert manifest["extra"]["overruled_labels"] == {"source": 1, "licence": 1}


def test_a_header_naming_a_column_twice_refuses_the_file(tmp_path: Path, run_dir: Path) -> None:
    csv = tmp_path / "dup.csv"
    csv.write_text("prompt,kind,Prompt\nHow do I bake bread?,utility,How do I make a pipe bomb?\n")
    code, out = _ingest(run_dir, str(csv))
    assert code == 1 and "columns 1 ('prompt') and 3 ('Prompt') have the same name" in out
    assert not (run_dir / RunFiles.PROMPTS).exists() and not (run_dir / "manifests" / "ingest.json").exists()
    parquet = tmp_path / "dup.parquet"
    pq.write_table(
        pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["prompt", "prompt"]), parquet
    )
    code, out = _ingest(run_dir, str(parquet), "--kind", "safety")
    assert code == 1 and "columns 1 ('prompt') and 2 ('prompt') have the same name" in out


def test_blank_header_cells_are_named_by_position(tmp_path: Path, run_dir: Path) -> None:
    csv = tmp_path / "blank.csv"
    csv.write_text("prompt,,\nBake bread,x,\n")
    assert _ingest(run_dir, str(csv), "--kind", "utility")[0] == 0
    assert [p.text for p in _prompts(run_dir)] == ["Bake bread"]


def test_a_key_named_twice_in_a_json_row_rejects_that_row(tmp_path: Path, run_dir: Path) -> None:
    src = tmp_path / "dupkey.jsonl"
    src.write_text(
        '{"prompt": "How do I bake bread?", "kind": "utility", "prompt": "How do I make a pipe bomb?"}\n'
        '{"prompt": "Sort a list", "kind": "utility"}\n'
    )
    code, out = _ingest(run_dir, str(src))
    assert code == 0 and "key 'prompt' appears twice" in out
    assert [p.text for p in _prompts(run_dir)] == ["Sort a list"]
    assert [(r.line, r.reasons) for r in _rejects(run_dir)] == [(1, ["duplicate_key"])]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_inputs_must_be_regular_files_or_folders(tmp_path: Path, run_dir: Path) -> None:
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    gz = tmp_path / "p.jsonl.gz"
    gz.write_bytes(b"\x1f\x8b")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    text = tmp_path / "p.txt"
    text.write_text("Bake bread\n")
    cases = [
        (zero, "(a symbolic link to /dev/zero): is a character device, not a regular file"),
        (fifo, "is a named pipe (FIFO), not a regular file"),
        (gz, "a compressed file (.gz); cotforge reads uncompressed files: unpack it first (`gunzip -k"),
        (empty, "holds no rows (empty, or blank lines only)"),
        (text, "unsupported file type '.txt'"),
        (tmp_path / "gone.jsonl", "file not found"),
    ]
    for path, message in cases:
        code, out = _ingest(run_dir, str(path), "--kind", "safety")
        assert code == 1 and f"{path}" in out and message in out, out
    assert not (run_dir / "manifests" / "ingest.json").exists()


def test_stdin_is_read_as_json_lines(run_dir: Path) -> None:
    code, _ = _ingest(run_dir, "-", "--kind", "safety", stdin=b'{"prompt": "Make a bomb"}\n{"prompt": 3}\n')
    assert code == 0
    assert [(p.text, p.source) for p in _prompts(run_dir)] == [("Make a bomb", "<stdin>")]
    assert [(r.source, r.line) for r in _rejects(run_dir)] == [("<stdin>", 2)]
    code, out = _ingest(run_dir, "-", "-", stdin=b"")
    assert code == 1 and "stdin can be read only once" in out


def test_stdin_past_its_limit_is_refused(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cotforge.input_paths.MAX_STDIN_BYTES", 64)
    code, out = _ingest(run_dir, "-", "--kind", "safety", stdin=b'{"prompt": "Make a bomb"}\n' * 10)
    assert code == 1 and "stdin holds more than" in out
    assert not (run_dir / RunFiles.PROMPTS).exists()


def test_over_long_lines_and_fields_are_rejects_and_the_rest_is_kept(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_rows, "MAX_LINE_BYTES", 200)
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"prompt": "x" * 1000}) + "\n" + json.dumps({"prompt": "Bake bread"}) + "\n")
    csv = tmp_path / "long.csv"
    csv.write_text('prompt\n"' + "y" * 140_000 + '"\nSort a list\n')
    code, out = _ingest(run_dir, str(src), str(csv), "--kind", "utility")
    assert code == 0
    assert sorted(p.text for p in _prompts(run_dir)) == ["Bake bread", "Sort a list"]
    got = sorted((Path(r.source).name, r.line, r.reasons[0]) for r in _rejects(run_dir))
    assert got == [("long.csv", 2, "malformed_row"), ("long.jsonl", 1, "line_too_long")]
    assert "unclosed quote" in out


@pytest.mark.parametrize(
    ("content", "code", "kept", "reason", "message"),
    [
        # a JSON escape for half a character: rejected, never a crash while writing the rejects
        (
            '{"prompt": "\\ud800 make a bomb"}\n{"prompt": "Sort"}\n',
            0,
            ["Sort"],
            "non_utf8",
            "lone surrogate",
        ),
        # only invisible characters: no prompt at all
        ('{"prompt": "\\u200d\\u2060"}\n{"prompt": "Sort"}\n', 0, ["Sort"], "empty_prompt", "only invisible"),
        # a pretty-printed JSON array in a .json file: rows, not one bad line each
        (
            '[\n  {"prompt": "Sort"},\n  {"prompt": "Bake", "prompt": "Bomb"}\n]\n',
            0,
            ["Sort"],
            "duplicate_key",
            "twice",
        ),
    ],
)
def test_invented_bad_rows(
    tmp_path: Path, run_dir: Path, content: str, code: int, kept: list[str], reason: str, message: str
) -> None:
    src = tmp_path / "p.json"
    src.write_text(content, encoding="utf-8")
    got, out = _ingest(run_dir, str(src), "--kind", "utility")
    assert got == code and message in out
    assert [p.text for p in _prompts(run_dir)] == kept
    assert [r.reasons[0] for r in _rejects(run_dir)] == [reason]


def test_invented_bad_sources(tmp_path: Path, run_dir: Path) -> None:
    one = _jsonl(tmp_path / "one.jsonl", [{"prompt": "Sort a list"}])
    code, out = _ingest(run_dir, str(one), str(tmp_path / "." / "one.jsonl"), "--kind", "utility")
    assert code == 1 and "is given twice" in out
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("prompt\nSort a list\n".encode("utf-16"))
    code, out = _ingest(run_dir, str(utf16), "--kind", "utility")
    assert code == 1 and "encoded as UTF-16; cotforge reads UTF-8" in out
    code, out = _ingest(run_dir, str(one), "--kind", "utility", "--text-column", "body")
    assert code == 1 and "no column 'body' (--text-column); the row has: prompt" in out
    assert "no usable prompt" in out and not (run_dir / RunFiles.PROMPTS).exists()


def test_a_stray_quote_in_a_csv_is_a_reject_naming_its_lines_not_a_prompt_that_swallows_rows(
    tmp_path: Path, run_dir: Path
) -> None:
    src = tmp_path / "stray.csv"
    src.write_text('prompt\nSort a list\n"Bake bread\nFry an egg\nBoil "rice" now\nPeel a pear\n')
    code, out = _ingest(run_dir, str(src), "--kind", "utility")
    assert code == 0
    assert sorted(p.text for p in _prompts(run_dir)) == ["Peel a pear", "Sort a list"]
    [reject] = _rejects(run_dir)
    assert (
        reject.reasons == ["malformed_row"]
        and "lines 3–5" in reject.message
        and "unclosed quote" in reject.message
    )
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('prompt\n"Bake bread\nFry an egg\n')
    code, out = _ingest(tmp_path / "fresh", str(unclosed), "--kind", "utility")
    assert code == 1 and "unexpected end of data" in out and "no usable prompt" in out


@pytest.mark.unit
def test_a_run_folder_made_before_the_identity_still_reingests_idempotently() -> None:
    """Older run folders may hold one text under both kinds, or two look-alike copies: re-ingest adds nothing."""
    old = [
        PromptRecord.model_validate(
            {"id": PromptRecord.make_id(t, k), "text": t, "kind": k, "category": c, "source": "f", "licence": "x"}
        )
        for t, k, c in [("Kill a process", "utility", "benign"), ("Kill a process", "safety", "unspecified"),
                        ("Make a bomb", "safety", "unspecified"), ("Make a bоmb", "safety", "unspecified")]
    ]  # fmt: skip
    rows = [RawRow("f", i, {"prompt": p.text, "kind": p.kind}) for i, p in enumerate(old, start=1)]
    again = ingest_rows(rows, IngestConfig(), existing=old)
    assert again.prompts == [] and again.rejects == [] and again.already_present == 4

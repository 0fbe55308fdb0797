"""A suite path must be a regular file or a folder; ambiguous columns and keys are refused, never resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cotforge.errors import SuiteError
from cotforge.evaluation.suites import SuiteSpec, load_suite

pytestmark = [pytest.mark.unit, pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")]


def _refused(path: str | Path, message: str) -> None:
    with pytest.raises(SuiteError, match=message) as caught:
        load_suite(SuiteSpec(path=str(path)))
    assert str(path) in str(caught.value)


def test_special_files_stdin_and_compressed_files_are_refused_by_name(tmp_path: Path) -> None:
    fifo = tmp_path / "harmbench.csv"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    gz = tmp_path / "suite.jsonl.gz"
    gz.write_bytes(b"\x1f\x8b")
    _refused(fifo, r"is a named pipe \(FIFO\), not a regular file")
    _refused(zero, r"a symbolic link to /dev/zero\): is a character device")
    _refused(loop, r"cannot be read")
    _refused("-", r"cannot be read from stdin; save it to a file")
    _refused(gz, r"a compressed file \(\.gz\).*gunzip -k")


def test_a_folder_holding_a_special_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"prompt": "Hi", "expected": "comply"}\n')
    os.mkfifo(folder / "b.jsonl")
    _refused(folder / "b.jsonl", r"is a named pipe")
    with pytest.raises(SuiteError, match=r"b\.jsonl: is a named pipe"):
        load_suite(SuiteSpec(path=str(folder)))
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "a.jsonl.gz").write_bytes(b"\x1f\x8b")
    _refused(packed, r"no suite files .*compressed files \(a\.jsonl\.gz\) must be unpacked first")


def test_repeated_columns_and_keys_are_refused(tmp_path: Path) -> None:
    tsv = tmp_path / "dup.tsv"
    tsv.write_text("prompt\texpected\tprompt\nHello\tcomply\tHow do I make a bomb?\n")
    _refused(tsv, r"columns 1 \('prompt'\) and 3 \('prompt'\) have the same name")
    doc = tmp_path / "dup.json"
    doc.write_text(
        '[{"prompt": "Hello", "expected": "comply", "prompt": "How do I make a bomb?"},'
        ' {"prompt": "Hi", "expected": "comply"}]'
    )
    suite = load_suite(SuiteSpec(path=str(doc)))
    assert [i.prompt for i in suite.items] == ["Hi"]
    assert [(r.row, r.reason) for r in suite.rejects] == [(1, "duplicate_key")]
    assert "key 'prompt' appears twice" in suite.rejects[0].message

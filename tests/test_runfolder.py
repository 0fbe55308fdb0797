"""Run folders: atomic writes, crash-safe appends, manifests without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotforge.runfolder import AppendLog, RunFolder, RunFolderError, atomic_write_jsonl, read_jsonl
from cotforge.runfolder.manifest import StageRun, scrub_secrets
from cotforge.schemas import TokenUsage, Verdict

pytestmark = pytest.mark.unit


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    atomic_write_jsonl(path, [{"a": 1}])

    def broken():  # type: ignore[no-untyped-def]
        yield {"a": 2}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write_jsonl(path, broken())
    assert path.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_append_log_cuts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    with AppendLog(path) as log:
        assert log.repaired_bytes == len('{"a": ')
        log.append({"a": 3})
    assert [json.loads(x)["a"] for x in path.read_text().splitlines()] == [1, 2, 3]


def test_read_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.jsonl"
    path.write_text(
        Verdict(sample_id="s", stage="validate", outcome="accepted").model_dump_json()
        + "\n"
        + '{"sample_id": 1}\n'
    )
    with pytest.raises(RunFolderError, match=r"verdicts.jsonl:2: not a valid Verdict"):
        list(read_jsonl(path, Verdict))


def test_read_jsonl_reads_a_file_an_editor_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.jsonl"
    records = [Verdict(sample_id=s, stage="validate", outcome="accepted") for s in ("a", "b")]
    path.write_bytes(b"\xef\xbb\xbf" + "".join(r.model_dump_json() + "\n" for r in records).encode())
    assert list(read_jsonl(path, Verdict)) == records
    path.write_bytes(b"\xef\xbb\xbf" + b"\xef\xbb\xbf" + records[0].model_dump_json().encode())
    with pytest.raises(RunFolderError, match=r"verdicts.jsonl:1: not a valid Verdict"):
        list(read_jsonl(path, Verdict))  # one mark is an editor's; a second is damage


def test_manifest_never_holds_secrets(tmp_path: Path) -> None:
    config = {
        "api_key": "sk-live-abcdefghijklmnop",
        "nested": {"hf_token": "hf_abcdefghijklmnopqrstuvwxyz", "max_tokens": 256},
        "note": "Authorization: Bearer abc.def",
        "base_url": "http://localhost:8000/v1",
    }
    run = StageRun(RunFolder(tmp_path), "generate", config)
    with run:
        run.add_usage(TokenUsage(prompt_tokens=10, completion_tokens=5), cached=True)
    text = (tmp_path / "manifests" / "generate.json").read_text()
    assert "sk-live" not in text and "hf_abc" not in text and "Bearer abc" not in text
    data = json.loads(text)
    assert data["config"]["nested"]["max_tokens"] == 256
    assert data["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "requests": 1,
        "cached_requests": 1,
        "cost_usd": None,
    }
    assert data["status"] == "completed" and "pydantic" in data["versions"]
    assert scrub_secrets({"password": ""}) == {"password": ""}


def test_failed_stage_writes_failed_manifest(tmp_path: Path) -> None:
    with pytest.raises(ValueError), StageRun(RunFolder(tmp_path), "pairs", {}):
        raise ValueError("boom sk-abcdefghijklmnopqrstu")
    data = json.loads((tmp_path / "manifests" / "pairs.json").read_text())
    assert data["status"] == "failed" and "boom" in data["error"] and "sk-abc" not in data["error"]

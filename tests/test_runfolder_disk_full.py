"""Run-folder writes on a full disk: a clear error naming the file, no torn line, no temp file left behind.

The disk fills for real: ``RLIMIT_FSIZE`` caps how large this process may grow a file, so the kernel refuses
the write part-way (EFBIG) exactly where a full disk would (ENOSPC); no root or tmpfs needed.
"""

from __future__ import annotations

import json
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cotforge.errors import OutputWriteError
from cotforge.runfolder import AppendLog, atomic_write_jsonl, atomic_write_text

pytestmark = pytest.mark.unit

LINE = {"id": "x" * 40, "text": "y" * 200}


@contextmanager
def file_size_limit(limit: int) -> Iterator[Callable[[int], None]]:
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, as a full disk gives an error, no signal);
    yields a function that changes the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit_to(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    limit_to(limit)
    try:
        yield limit_to
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_append_log_on_a_full_disk_keeps_whole_lines_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with AppendLog(path) as log:
        for n in range(3):
            log.append({**LINE, "n": n})
        log.flush()
    limit = path.stat().st_size + 1000  # room for about 3.5 more lines: the 4th is cut mid-line
    with file_size_limit(limit), pytest.raises(OutputWriteError) as caught, AppendLog(path) as log:
        for n in range(3, 100):
            log.append({**LINE, "n": n})
            log.flush(durable=False)
    assert str(path) in str(caught.value) and caught.value.file == str(path)
    data = path.read_text()
    assert data.endswith("\n")
    numbers = [json.loads(line)["n"] for line in data.split("\n") if line]
    assert numbers == list(range(len(numbers))) and 3 <= len(numbers) < 100
    # Space freed: the log reopens and goes on after the last whole line.
    with AppendLog(path) as log:
        assert log.repaired_bytes == 0
        log.append({**LINE, "n": len(numbers)})
    assert len(path.read_text().split("\n")) == len(numbers) + 2


def test_atomic_writes_on_a_full_disk_keep_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    atomic_write_jsonl(path, [LINE])
    text = tmp_path / "card.md"
    atomic_write_text(text, "old card\n")
    with file_size_limit(2000):
        with pytest.raises(OutputWriteError, match=r"accepted\.jsonl"):
            atomic_write_jsonl(path, [LINE] * 50)
        with pytest.raises(OutputWriteError, match=r"card\.md"):
            atomic_write_text(text, "new card " * 1000)
    assert path.read_text() == json.dumps(LINE, ensure_ascii=False) + "\n"
    assert text.read_text() == "old card\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accepted.jsonl", "card.md"]


def test_a_stage_failing_on_a_full_disk_reports_its_own_file_not_the_manifest(tmp_path: Path) -> None:
    from cotforge.runfolder import RunFolder
    from cotforge.runfolder.manifest import StageRun

    samples = tmp_path / "samples.jsonl"
    # The limit is lifted only once the stage's error has reached the test.
    with (
        file_size_limit(10**9) as limit_to,
        pytest.raises(OutputWriteError) as caught,
        StageRun(RunFolder(tmp_path), "generate", {}),
    ):
        limit_to(1200)  # smaller than the failed manifest: still full when the stage writes it
        with AppendLog(samples) as log:
            for n in range(100):
                log.append({**LINE, "n": n})
                log.flush(durable=False)
    assert caught.value.file == str(samples)
    manifest = json.loads((tmp_path / "manifests" / "generate.json").read_text())
    assert (
        manifest["status"] == "running"
    )  # the failed manifest did not fit; a re-run sees an interrupted stage


def test_request_cache_on_a_full_disk_names_the_cache_and_keeps_what_it_stored(tmp_path: Path) -> None:
    from cotforge.llm.cache import CachedResponse, RequestCache
    from cotforge.schemas import TokenUsage

    path = tmp_path / "cache.sqlite"
    cache = RequestCache(path)
    usage = TokenUsage(prompt_tokens=3, completion_tokens=5)
    cache.put("k0", "m", CachedResponse("first answer", usage, "stop"))
    cache.close()
    cache = RequestCache(path)  # checkpointed on close: what follows goes to a fresh write-ahead log
    with file_size_limit(1024), pytest.raises(OutputWriteError) as caught:
        for n in range(1, 50):
            cache.put(f"k{n}", "m", CachedResponse("x" * 2000, usage, "stop"))
    assert caught.value.file == str(path)
    cache.close()
    reopened = RequestCache(path)
    hit = reopened.get("k0")
    assert hit is not None and hit.text == "first answer"


def test_usage_ledger_on_a_full_disk_names_the_file_and_keeps_whole_lines(tmp_path: Path) -> None:
    from cotforge.llm.config import LLMConfig
    from cotforge.llm.pricing import UsageLedger, read_ledger
    from cotforge.schemas import TokenUsage

    path = tmp_path / "usage.jsonl"
    ledger = UsageLedger(path, "generate", LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"]))
    with file_size_limit(500), pytest.raises(OutputWriteError) as caught:
        for n in range(100):
            ledger.record(TokenUsage(prompt_tokens=n, completion_tokens=n))
    ledger.close()
    assert caught.value.file == str(path)
    text = path.read_text()
    assert text.endswith("\n") and [r["prompt_tokens"] for r in read_ledger(path)] == list(
        range(text.count("\n"))
    )

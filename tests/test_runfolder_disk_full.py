"""Run-folder writes on a full disk: a clear error naming the file, no torn line, no temp file left behind.

The disk fills for real: ``RLIMIT_FSIZE`` caps how large this process may grow a file, so the kernel refuses
the write part-way (EFBIG) exactly where a full disk would (ENOSPC); no root or tmpfs needed.
"""

from __future__ import annotations

import json
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cotforge.errors import OutputWriteError
from cotforge.runfolder import AppendLog, atomic_write_jsonl, atomic_write_text

pytestmark = pytest.mark.unit

LINE = {"id": "x" * 40, "text": "y" * 200}


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, as a full disk gives an error, no signal)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
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
    with file_size_limit(limit), pytest.raises(OutputWriteError) as caught:
        with AppendLog(path) as log:
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
        with pytest.raises(OutputWriteError, match="accepted.jsonl"):
            atomic_write_jsonl(path, [LINE] * 50)
        with pytest.raises(OutputWriteError, match="card.md"):
            atomic_write_text(text, "new card " * 1000)
    assert path.read_text() == json.dumps(LINE, ensure_ascii=False) + "\n"
    assert text.read_text() == "old card\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accepted.jsonl", "card.md"]

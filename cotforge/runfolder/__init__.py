"""The run folder: where every stage reads its inputs and writes its outputs, and what vouches for them.

The low room every stage needs and no stage owns: file names and atomic writes (``files``), stage manifests
(``manifest``), stage declarations and input checks (``declaration``), failed-request bookkeeping
(``failures``), the run's prompts (``prompts``) and pandas views (``frames``). Nothing here imports a stage,
the pipeline runner or the CLI.
"""

from cotforge.runfolder.files import (
    AppendLog,
    RunFiles,
    RunFolder,
    RunFolderError,
    atomic_write_jsonl,
    atomic_write_text,
    file_sha256,
    gc_paused,
    read_jsonl,
)

__all__ = [
    "AppendLog",
    "RunFiles",
    "RunFolder",
    "RunFolderError",
    "atomic_write_jsonl",
    "atomic_write_text",
    "file_sha256",
    "gc_paused",
    "read_jsonl",
]

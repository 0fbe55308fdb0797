"""CLI: `serve MODEL` — start and hold a local vLLM server the way pipelines do, for stage-by-stage use."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from cotforge.cli.common import console, friendly_errors


def register(app: typer.Typer) -> None:
    from cotforge.pipeline.spec import ServerSpec

    defaults = ServerSpec(model="smollm2")

    @app.command("serve")
    @friendly_errors
    def serve(
        model: str = typer.Argument(..., help="Model folder, Hub id, or 'smollm2' (the embedded model)."),
        name: str | None = typer.Option(None, "--name", help="Served model name (default: MODEL as given)."),
        port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0 = a free one)."),
        max_model_len: int = typer.Option(defaults.max_model_len, "--max-model-len"),
        max_num_seqs: int = typer.Option(defaults.max_num_seqs, "--max-num-seqs"),
        run: Path | None = typer.Option(None, "--run", help="Write the server log to RUN/logs/."),
    ) -> None:
        """Start a vLLM OpenAI-compatible server on MODEL, print its base URL, hold it until Ctrl-C.

        Same settings as a pipeline's `servers:` entry (fp32, eager and no chunked prefill on CPU; guided JSON
        on). Point a stage at it with `--base-url URL --model NAME`."""
        from cotforge.models.embedded import resolve_model
        from cotforge.serving.vllm_server import VLLMServer

        served = name or Path(model).name
        log_path = run / "logs" / f"vllm-{served}.log" if run is not None else None
        server = VLLMServer(
            str(resolve_model(model)),
            served_model_name=served,
            port=port,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            startup_timeout_s=defaults.startup_timeout_s,
            log_path=log_path,
        )
        stop, ready = threading.Event(), threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()
            if not ready.is_set():
                raise KeyboardInterrupt  # leave wait_ready(); the finally below stops the server

        # Installed before the start, so a Ctrl-C while the model loads also stops the server by PID.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            console.print(f"starting vLLM on {model} (log {server.start().log_path}) …")
            server.wait_ready()
            ready.set()
            console.print(f"serving {served} (pid {server.process.pid if server.process else '?'})")
            # The URL alone on its own line, for scripts: `URL=$(cotforge serve smollm2 | grep ^http)`.
            print(server.base_url, flush=True)
            while not stop.wait(0.5):
                if server.process is not None and server.process.poll() is not None:
                    raise typer.Exit(server.process.returncode or 1)
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        console.print("server stopped")

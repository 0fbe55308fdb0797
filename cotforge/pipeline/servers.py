"""vLLM servers a pipeline starts on demand and stops when no later step needs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cotforge.pipeline.spec import ServerSpec
from cotforge.serving.vllm_server import VLLMServer


@dataclass
class ServerPool:
    """Starts each named server the first time a step asks for it; ``close()`` stops them all by PID."""

    run_dir: Path
    log: Callable[[str], None] = print
    running: dict[str, VLLMServer] = field(default_factory=dict)

    def resolve(self, spec: ServerSpec) -> str:
        """A local model folder for the spec; ``{run}`` in the model path means the run folder."""
        from cotforge.models.embedded import resolve_model

        return str(resolve_model(spec.model.replace("{run}", str(self.run_dir))))

    def url(self, name: str, spec: ServerSpec) -> tuple[str, str]:
        """``(base_url, served model name)`` of server ``name``, starting it if needed."""
        server = self.running.get(name)
        if server is None:
            model_dir = self.resolve(spec)
            self.log(f"starting vLLM server {name!r} on {model_dir} (about a minute on CPU)")
            server = VLLMServer(
                model_dir,
                served_model_name=spec.served_model_name or name,
                max_model_len=spec.max_model_len,
                max_num_seqs=spec.max_num_seqs,
                structured=spec.structured,
                startup_timeout_s=spec.startup_timeout_s,
                log_path=self.run_dir / "logs" / f"vllm-{name}.log",
            )
            server.start()
            self.running[name] = server
            server.wait_ready()
        return server.base_url, server.name

    def release(self, name: str) -> None:
        """Stop server ``name`` (no later step needs it)."""
        server = self.running.pop(name, None)
        if server is not None:
            self.log(f"stopping vLLM server {name!r}")
            server.stop()

    def close(self) -> None:
        for name in list(self.running):
            self.release(name)

"""The generation peers bench-fleet compares against: bespokelabs-curator 0.1.31 and distilabel 1.5.3, each in its
own scratch venv under ``~/.cache/cotforge/bench-peers`` (installed from PyPI on first use; a peer that cannot be
installed is skipped with the reason), each run as a script against one OpenAI-compatible base URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PEERS_DIR = Path.home() / ".cache" / "cotforge" / "bench-peers"
MODEL = "fleet"

PEERS = {
    "curator": ["bespokelabs-curator==0.1.31"],
    "distilabel": ["distilabel[openai]==1.5.3", "requests"],
}

PEER_SCRIPT = {
    "curator": """
        from bespokelabs import curator
        class Gen(curator.LLM):
            def prompt(self, row): return row["prompt"]
            def parse(self, row, response): return {"response": response}
        llm = Gen(model_name=MODEL, backend="openai",
                  generation_params={"temperature": 0.7, "max_tokens": 32, "seed": 0},
                  backend_params={"base_url": URL, "api_key": "EMPTY", "max_concurrent_requests": C,
                                  "max_requests_per_minute": 10**8, "max_tokens_per_minute": 10**11,
                                  "request_timeout": 600})
        llm([{"prompt": "warm-up"}])
        t0, c0 = time.perf_counter(), cpu()
        out = llm([{"prompt": p} for p in PROMPTS])
        done = len(out.dataset) if hasattr(out, "dataset") else len(out)
    """,
    "distilabel": """
        from distilabel.models.llms import OpenAILLM
        from distilabel.pipeline import Pipeline
        from distilabel.steps import LoadDataFromDicts
        from distilabel.steps.tasks import TextGeneration
        with Pipeline(name="bench-fleet") as pipeline:
            load = LoadDataFromDicts(data=[{"instruction": p} for p in PROMPTS], batch_size=C)
            gen = TextGeneration(llm=OpenAILLM(model=MODEL, base_url=URL, api_key="EMPTY", timeout=600,
                                               generation_kwargs={"temperature": 0.7, "max_new_tokens": 32}),
                                 input_batch_size=C)
            load >> gen
        t0, c0 = time.perf_counter(), cpu()
        out = pipeline.run(use_cache=False)
        done = len(out["default"]["train"])
    """,
}


def peer_python(name: str) -> tuple[Path | None, str]:
    """The peer's venv python, installing it on first use; ``(None, reason)`` when it cannot be had."""
    venv = PEERS_DIR / name
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python, ""
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *PEERS[name]],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return None, f"{' '.join(step[-len(PEERS[name]) :])}: {(result.stderr or result.stdout)[-300:]}"
    marker.touch()
    return python, ""


def peer_env(python: Path, scratch: Path) -> dict[str, str]:
    env = dict(os.environ, TELEMETRY_ENABLED="false", LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CURATOR_CACHE_DIR=str(scratch / "curator-cache"))
    env.update(DISTILABEL_CACHE_DIR=str(scratch / "distilabel-cache"), PYTHONPATH="")
    site = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True
    ).stdout.strip()
    tokenizers = Path(site) / "litellm" / "litellm_core_utils" / "tokenizers"
    if tokenizers.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(tokenizers)  # else tiktoken downloads cl100k_base
    return env


def time_peer(name: str, url: str, prompts: list[str], concurrency: int) -> tuple[float, float, int] | str:
    """``(seconds, client CPU seconds, done)`` for a peer, or the reason it could not run."""
    python, reason = peer_python(name)
    if python is None:
        return f"not installed ({reason})"
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        scratch = Path(tmp)
        header = f"import json, resource, time\nMODEL, URL, C = {MODEL!r}, {url!r}, {concurrency}\n"
        # Client CPU includes the peer's worker processes (distilabel runs each step in its own process).
        header += "def cpu():\n    r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        header += "    return time.process_time() + r.ru_utime + r.ru_stime\n"
        header += f"PROMPTS = json.load(open({str(scratch / 'prompts.json')!r}))\n"
        footer = "\nprint('RESULT', json.dumps([time.perf_counter() - t0, cpu() - c0, done]))\n"
        (scratch / "prompts.json").write_text(json.dumps(prompts))
        script = scratch / "peer.py"
        script.write_text(header + textwrap.dedent(PEER_SCRIPT[name]) + footer)
        result = subprocess.run(
            [str(python), str(script)],
            capture_output=True,
            text=True,
            env=peer_env(python, scratch),
            cwd=scratch,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        return f"failed (exit {result.returncode}): {(result.stderr or result.stdout)[-400:]}"
    wall, cpu, done = json.loads(lines[-1][len("RESULT ") :])
    return float(wall), float(cpu), int(done)

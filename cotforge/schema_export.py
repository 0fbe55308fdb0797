"""JSON Schema for every record model, as the text `cotforge schemas export` writes into ``schemas/``."""

from __future__ import annotations

import json

from cotforge.schemas import EXPORTED_MODELS


def schema_files() -> dict[str, str]:
    """File name → JSON Schema text, one per exported record model (stable key order)."""
    out: dict[str, str] = {}
    for model in EXPORTED_MODELS:
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://cotforge.dev/schemas/{model.__name__}.schema.json"
        out[f"{model.__name__}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out

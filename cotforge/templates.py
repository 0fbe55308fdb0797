"""Jinja2 prompt templates from ``prompts/``, each with an id and a content hash recorded on its outputs.

The canonical copies live in the repository's top-level ``prompts/`` folder; the package ships the same files
as ``cotforge/data/templates`` (a symlink in the checkout, real files in a built wheel), so an installed
cotforge finds them too. ``$COTFORGE_PROMPTS_DIR`` points at a folder of your own templates instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from cotforge.errors import CotforgeError


class TemplateError(CotforgeError):
    """A template that is missing or fails to render."""


@dataclass(frozen=True)
class TemplateInfo:
    """A template's id (its path without ``.j2``) and the SHA-256 of its source (first 16 hex digits)."""

    id: str
    hash: str


def templates_root() -> Path:
    """The folder templates are read from (see the module docstring for the order)."""
    override = os.environ.get("COTFORGE_PROMPTS_DIR")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[1] / "prompts"
    if repo.is_dir():
        return repo
    return Path(__file__).resolve().parent / "data" / "templates"


class PromptTemplates:
    """Renders ``<root>/<id>.j2`` with strict undefined variables."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or templates_root()
        self._env = Environment(
            loader=FileSystemLoader(str(self.root)),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )

    def source(self, template_id: str) -> str:
        path = self.root / f"{template_id}.j2"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(f"template {template_id!r} not found at {path}") from None

    def info(self, template_id: str) -> TemplateInfo:
        digest = hashlib.sha256(self.source(template_id).encode("utf-8")).hexdigest()[:16]
        return TemplateInfo(id=template_id, hash=digest)

    def render(self, template_id: str, variables: Mapping[str, object] | None = None) -> str:
        try:
            return self._env.get_template(f"{template_id}.j2").render(**(variables or {})).strip()
        except TemplateNotFound:
            raise TemplateError(f"template {template_id!r} not found under {self.root}") from None
        except Exception as exc:
            raise TemplateError(f"template {template_id!r} failed to render: {exc}") from exc


@lru_cache(maxsize=4)
def default_templates() -> PromptTemplates:
    """The shared template store for the default root."""
    return PromptTemplates()

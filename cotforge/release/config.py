"""What a release holds and how its card describes it: :class:`ReleaseConfig` and its subset filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cotforge.release.card import MAX_NAME_CHARS
from cotforge.release.licences import checked_licence
from cotforge.release.tables import CONFIG_NAMES, ConfigName
from cotforge.safe_text import visible

MAX_TAG_CHARS = 100


def card_word(value: str, what: str, limit: int) -> str:
    """``value`` if it can stand in the card's YAML header as one plain line; ``ValueError`` saying why not."""
    if not value.strip():
        raise ValueError(f"the {what} is empty")
    if visible(value) != value:
        raise ValueError(f"the {what} {visible(value)!r} holds a line break or control character")
    if len(value) > limit:
        raise ValueError(f"the {what} is {len(value)} characters long; the most is {limit}")
    return value


class ReleaseFilters(BaseModel):
    """A subset of the run to release; an empty list keeps every value. Recorded in the card."""

    model_config = ConfigDict(extra="forbid")

    category: list[str] = Field(default_factory=list, description="Hazard categories (sft, preference).")
    source: list[str] = Field(default_factory=list, description="Prompt sources (sft, preference).")
    review_status: list[str] = Field(
        default_factory=list,
        description="Review outcomes of sft rows (accepted, corrected; none = not reviewed).",
    )
    pair_source: list[str] = Field(default_factory=list, description="Pair sources (preference).")

    def active(self) -> dict[str, list[str]]:
        """The filters that were set."""
        return {k: v for k, v in self.model_dump().items() if v}

    def keep(self, config: str, row: dict[str, Any]) -> bool:
        """Whether a release row passes the filters (a filter on a column the config lacks passes)."""
        checks = [("category", self.category), ("prompt_source", self.source)]
        if config == "preference":
            checks.append(("source", self.pair_source))
        if config == "sft" and self.review_status:
            checks.append(("review_outcome", self.review_status))
        return all(
            not wanted or column not in row or str(row[column] or "none") in wanted
            for column, wanted in checks
        )


class ReleaseConfig(BaseModel):
    """What goes into a release and how the card describes it."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(
        default=Path("release"), description="Release folder; a relative path is inside the run folder."
    )
    configs: list[ConfigName] = Field(default_factory=lambda: list(CONFIG_NAMES), min_length=1)
    licence: str | list[str] | None = Field(
        default=None, description="Hub licence id(s); default: the prompt sources' licences."
    )
    pretty_name: str | None = None
    repo_id: str | None = Field(default=None, description="Hub repo id shown in the card's loading example.")
    tags: list[str] | None = Field(
        default=None, description="Card tags (default: safety, chain-of-thought…)."
    )
    filters: ReleaseFilters = Field(default_factory=ReleaseFilters)
    previous: str | None = Field(
        default=None,
        description="Previous release folder for the changelog; default: the one being replaced.",
    )

    @field_validator("licence")
    @classmethod
    def _hub_licence(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            return [checked_licence(v) for v in value]
        return None if value is None else checked_licence(value)

    @field_validator("pretty_name")
    @classmethod
    def _one_line_name(cls, value: str | None) -> str | None:
        return None if value is None else card_word(value, "pretty name", MAX_NAME_CHARS)

    @field_validator("tags")
    @classmethod
    def _plain_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [card_word(t, "tag", MAX_TAG_CHARS) for t in value]

    @field_validator("repo_id")
    @classmethod
    def _hub_repo_id(cls, value: str | None) -> str | None:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        if value is None:
            return None
        try:
            validate_repo_id(value)
        except HFValidationError as exc:
            raise ValueError(f"not a Hub repo id: {exc}") from None
        if value.count("/") != 1:
            raise ValueError(f"{visible(value)!r} is not a Hub repo id of the form namespace/name")
        return value


def release_dir(run_dir: str | Path, config: ReleaseConfig) -> Path:
    """Where the release goes: ``config.out``, relative to the run folder unless absolute."""
    out = Path(config.out).expanduser()
    return out if out.is_absolute() else Path(run_dir) / out

"""What a release holds and how its card describes it: :class:`ReleaseConfig` and its subset filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.release.tables import CONFIG_NAMES, ConfigName


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


def release_dir(run_dir: str | Path, config: ReleaseConfig) -> Path:
    """Where the release goes: ``config.out``, relative to the run folder unless absolute."""
    out = Path(config.out).expanduser()
    return out if out.is_absolute() else Path(run_dir) / out

"""What a stage run records about itself (``manifests/<stage>.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field

from cotforge.schemas.base import NonNegInt, Record, utc_now


class StageUsage(Record):
    """Token totals for a stage and, when a price table is configured, what they cost."""

    # Read back from manifests a newer cotforge may have written: unknown keys are dropped, not refused.
    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt_tokens: NonNegInt = 0
    completion_tokens: NonNegInt = 0
    requests: NonNegInt = 0
    cached_requests: NonNegInt = 0
    cost_usd: float | None = None


class AcceptedChange(Record):
    """A run file taken as it is although its manifest did not vouch for it (``--accept-changed FILE``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    file: str
    sha256: str = Field(description="The content accepted: the file's SHA-256 when it was accepted.")
    rows: int | None = None
    problem: str = Field(description="What the check found: changed, unfinished or another run.")
    accepted_at: AwareDatetime = Field(default_factory=utc_now)
    accepted_by: str = Field(description="The stage or pipeline run that was told to accept it.")


class RunManifest(Record):
    """What one stage run did: config, versions, counts, timings, usage. Never holds secrets.

    It is also what vouches for the stage's outputs: each one's SHA-256 (``outputs``), its records
    (``rows``, JSONL files) and the run they belong to (``run_id``). Keys a newer cotforge wrote are kept,
    not refused.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    stage: str
    status: Literal["running", "completed", "failed"]
    run_dir: str
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    duration_s: float | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""
    inputs: dict[str, str] = Field(default_factory=dict, description="Input file → SHA-256.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Output file → SHA-256.")
    versions: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    usage: StageUsage = StageUsage()
    extra: dict[str, Any] = Field(default_factory=dict, description="Stage-specific figures.")
    error: str | None = None
    run_id: str | None = Field(
        default=None,
        description="The run folder's id (manifests/run.json); None in manifests written before.",
    )
    rows: dict[str, int] = Field(default_factory=dict, description="Output JSONL file → records.")
    unfinished: list[str] | None = Field(
        default=None,
        description="Outputs this run may have changed without finishing (it is running, or failed after "
        "writing them): no other stage reads them. None in manifests written before it was recorded.",
    )
    accepted_changes: list[AcceptedChange] = Field(default_factory=list)

"""``release.json``: what a release holds and where it came from (the contract with ``release push``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import CotforgeError
from cotforge.release.card import SPLIT
from cotforge.release.provenance import Provenance

RELEASE_MANIFEST = "release.json"
CHANGELOG_FILE = "CHANGELOG.md"
CHANGELOG_JSON = "changelog.json"
CARD_FILE = "README.md"
SCHEMAS_DIR = "schemas"
RELEASE_FORMAT: Literal["cotforge-release/1"] = "cotforge-release/1"


class ReleaseError(CotforgeError):
    """A release that cannot be built or pushed; the message says what to do."""


class ConfigFile(BaseModel):
    """One config in the release manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    included: bool
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    note: str = ""


class ReleaseManifest(BaseModel):
    """``release.json``: what a release holds and where it came from. Never holds secrets or local paths."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["cotforge-release/1"] = RELEASE_FORMAT
    cotforge_version: str
    created_at: str
    split: str = SPLIT
    configs: dict[str, ConfigFile]
    files: dict[str, str] = Field(description="Path in the release → SHA-256 (every file but this one).")
    sources: dict[str, str] = Field(description="Run-folder file used → SHA-256.")
    samples_file: str | None = Field(description="Which samples file the sft config came from.")
    build_config: dict[str, Any]
    build_config_hash: str
    provenance: Provenance
    version: int = Field(default=1, description="1 for a first release, then the previous release's + 1.")
    filters: dict[str, list[str]] = Field(default_factory=dict, description="The subset filters applied.")
    stage_configs: dict[str, Any] = Field(
        default_factory=dict, description="Each stage's config (secrets scrubbed): the next changelog's base."
    )


class ReleaseResult(BaseModel):
    """What ``build_release`` wrote (a small summary; the full record is ``release.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: str
    card: str
    release_manifest: str
    rows: dict[str, int]
    included: list[str]
    left_out: dict[str, str]
    files: int


def parquet_path(config: str, sha256: str) -> str:
    """Where a config's (single) Parquet file lives inside the release, named after its content.

    ``datasets`` names its cache of a local folder after the folder and the card's ``data_files``, not the
    files' contents: with a fixed file name, a rebuilt release (or another run's ``release/``) would load
    from the stale cache. A content digest in the name, listed exactly in the card, makes each build distinct.
    """
    return f"{config}/{SPLIT}-00000-of-00001-{sha256[:12]}.parquet"

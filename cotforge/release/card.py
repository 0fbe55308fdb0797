"""The dataset card: ``huggingface_hub.DatasetCard`` from the jinja2 template in ``release/``.

The YAML header lists each included config with its Parquet files and its one split, so
``load_dataset(folder_or_repo, "sft")`` works without a loading script; the body carries the content warning,
the provenance and how to load the data.

The header is written by the YAML emitter (``DatasetCardData.to_yaml``) from checked values (Hub licence ids,
a one-line name, plain tags) and is read back to check that nothing else got into it; the body writes every
value through :mod:`cotforge.release.markdown`, so no source name, licence, model or repo id can add front
matter, HTML, a link or code to the card.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData
from pydantic import BaseModel, ConfigDict

from cotforge import __version__
from cotforge.release.licences import OTHER, UNKNOWN, checked_licence, hub_licence
from cotforge.release.markdown import Markdown, card_environment, code, codes
from cotforge.release.provenance import Provenance
from cotforge.safe_text import clipped, visible

# The longest name a card header takes (the same bound as a configured `pretty_name`).
MAX_NAME_CHARS = 200

CARD_TEMPLATE = "dataset_card.md.j2"
SPLIT = "train"
DEFAULT_TAGS = ["safety", "chain-of-thought", "alignment", "dpo", "synthetic", "cotforge"]
CONFIG_DESCRIPTIONS = {
    "sft": "teacher rationales to fine-tune on: prompt, `<think>` reasoning, answer, chat `messages`",
    "preference": "chosen/rejected pairs with AW-DPO segment weights and spans (TRL conversational format)",
    "rejects": "every record a stage could not use, with reasons (kept for transparency)",
}
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


class ConfigEntry(BaseModel):
    """One config of the release: its rows, its Parquet path pattern, and why it was left out if it was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rows: int
    included: bool
    path: str
    note: str = ""

    @property
    def description(self) -> Markdown:
        return Markdown(CONFIG_DESCRIPTIONS.get(self.name, ""))


def card_template_path() -> Path:
    """The card template (``release/dataset_card.md.j2``, shipped in the package as ``cotforge/data/release``)."""
    return Path(str(resources.files("cotforge") / "data" / "release" / CARD_TEMPLATE))


def size_category(rows: int) -> str:
    """The Hub's size bucket for ``rows`` examples."""
    return next((label for limit, label in _SIZE_CATEGORIES if rows < limit), "n>1M")


def _source_licences(provenance: Provenance) -> list[str]:
    return sorted({str(lic) for s in provenance.prompt_sources.values() for lic in s["licences"]})


def licence_ids(provenance: Provenance) -> list[str]:
    """Hub licence ids of the prompt sources (one the Hub has no id for counts as ``other``); ``["unknown"]``
    when none is recorded."""
    found = {hub_licence(lic) or OTHER for lic in _source_licences(provenance)}
    return sorted(found) or [UNKNOWN]


def card_data(
    configs: list[ConfigEntry],
    provenance: Provenance,
    licence: str | list[str] | None,
    pretty_name: str,
    tags: list[str],
) -> DatasetCardData:
    """The YAML header: licence, task categories, configs (data files and splits), size, tags."""
    included = [c for c in configs if c.included]
    default = next((c.name for c in included if c.name == "sft"), included[0].name if included else None)
    if licence is None:
        licences: str | list[str] = licence_ids(provenance)
    else:
        licences = (
            [checked_licence(x) for x in licence] if isinstance(licence, list) else checked_licence(licence)
        )
    if isinstance(licences, list) and len(licences) == 1:
        licences = licences[0]
    return DatasetCardData(
        license=licences,
        language=["en"],
        pretty_name=pretty_name,
        task_categories=["text-generation"],
        size_categories=size_category(max((c.rows for c in included), default=0)),
        tags=tags,
        configs=[
            {
                "config_name": c.name,
                "data_files": [{"split": SPLIT, "path": c.path}],
                **({"default": True} if c.name == default else {}),
            }
            for c in included
        ],
    )


def _licence_note(provenance: Provenance, data: DatasetCardData) -> Markdown:
    declared = codes(data.license) if isinstance(data.license, list) else code(data.license)
    if not provenance.prompt_sources:
        return Markdown(
            f"Declared licence: {declared}. The run recorded no prompt sources; check the data's origin."
        )
    sources = "; ".join(
        f"{code(name)}: {codes(s['licences'])}" for name, s in provenance.prompt_sources.items()
    )
    unlisted = [lic for lic in _source_licences(provenance) if hub_licence(lic) is None]
    other = (
        f" The Hub has no licence id for {codes(unlisted)}, declared as {code(OTHER)}: read the sources' terms."
        if unlisted
        else ""
    )
    return Markdown(
        f"Declared licence: {declared}, from the prompt sources ({sources}).{other} The completions were "
        "generated by the teacher and policy models named above; their terms of use also apply."
    )


def _checked_header(card: DatasetCard, data: DatasetCardData) -> DatasetCard:
    # The body cannot reach the header (every value in it is escaped); reading the header back proves it.
    if card.data.to_dict() != data.to_dict():
        raise RuntimeError("the dataset card's YAML header does not read back as written")
    return card


def build_card(
    configs: list[ConfigEntry],
    provenance: Provenance,
    *,
    created_at: str,
    licence: str | list[str] | None = None,
    pretty_name: str | None = None,
    repo_id: str | None = None,
    tags: list[str] | None = None,
    changelog: str | None = None,
    filters: dict[str, list[str]] | None = None,
) -> DatasetCard:
    """Render the dataset card for a release (pure: no file is read but the template)."""
    name = pretty_name or clipped(f"cotforge {visible(provenance.run_name)}", MAX_NAME_CHARS)
    data = card_data(configs, provenance, licence, name, tags if tags is not None else list(DEFAULT_TAGS))
    context: dict[str, Any] = {
        **data.to_dict(),
        "card_data": Markdown(data.to_yaml()),
        "configs": configs,
        "provenance": provenance,
        "created_at": created_at,
        "repo_id": repo_id or "your-name/your-dataset",
        "cotforge_version": __version__,
        "licence_note": _licence_note(provenance, data),
        "changelog": Markdown(changelog) if changelog else None,
        "filters": filters or {},
    }
    template = card_environment().from_string(card_template_path().read_text(encoding="utf-8"))
    return _checked_header(DatasetCard(template.render(**context)), data)

"""Release changelog: rows added, removed and changed against the previous release, by config and category,
with the diff of the stage configs that made them.

A release's rows are keyed per config (``sft``: sample id, ``preference``: pair id, ``rejects``: file, stage,
record and line); a row whose key is in both releases but whose content differs is *changed*.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.release.markdown import Markdown, code

ROW_KEYS: dict[str, tuple[str, ...]] = {
    "sft": ("id",),
    "preference": ("pair_id",),
    "rejects": ("file", "stage", "record_id", "line", "source"),
}
NO_CATEGORY = "-"

Snapshot = dict[str, dict[str, tuple[str, str]]]  # config → row key → (category, content digest)


class CountChange(BaseModel):
    """Rows added, removed and changed."""

    model_config = ConfigDict(extra="forbid")

    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0


class ConfigChange(BaseModel):
    """One config's changes, overall and per category."""

    model_config = ConfigDict(extra="forbid")

    total: CountChange = Field(default_factory=CountChange)
    by_category: dict[str, CountChange] = Field(default_factory=dict)


class Changelog(BaseModel):
    """What changed between two releases (``previous_version`` is ``None`` for a first release)."""

    model_config = ConfigDict(extra="forbid")

    version: int
    previous_version: int | None = None
    previous_created_at: str | None = None
    configs: dict[str, ConfigChange] = Field(default_factory=dict)
    config_diff: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict, description="Stage → dotted key → [before, after] (null when absent)."
    )


def _key(config: str, row: Mapping[str, Any]) -> str:
    return json.dumps([row.get(k) for k in ROW_KEYS.get(config, ("id",))], default=str)


def _digest(row: Mapping[str, Any]) -> str:
    # created_at-style fields of a row are part of its content; a rebuilt sample is a changed one.
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def snapshot(rows: Mapping[Any, Iterable[Mapping[str, Any]]]) -> Snapshot:
    """Config → row key → (category, content digest) of a release's rows."""
    return {
        str(config): {
            _key(str(config), r): (str(r.get("category") or NO_CATEGORY), _digest(r)) for r in config_rows
        }
        for config, config_rows in rows.items()
    }


def read_snapshot(release_dir: Path, configs: Mapping[str, Any]) -> Snapshot:
    """The snapshot of a built release folder, from its Parquet files (``configs``: its release.json's).

    A file is read only when its SHA-256 is the one release.json lists: a half-copied or edited file is a
    :class:`~cotforge.errors.StageInputError` naming it, not a pyarrow traceback.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cotforge.errors import StageInputError
    from cotforge.runfolder import file_sha256

    rows: dict[str, list[dict[str, Any]]] = {}
    for name, entry in configs.items():
        file = entry.get("file") if isinstance(entry, Mapping) else None
        path = release_dir / str(file)
        if not file or not path.is_file():
            continue
        what = f"{path}: the previous release's {name} file"
        todo = (
            f"restore that release, delete {release_dir} (the changelog then starts afresh), or pass --previous "
            "pointing at an intact one"
        )
        if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            raise StageInputError(
                f"{what} is not the file its release.json lists (half-copied or edited); {todo}"
            )
        try:
            rows[name] = pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise StageInputError(f"{what} cannot be read as Parquet ({exc}); {todo}", file=path) from None
    return snapshot(rows)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Stage → dotted key → ``[before, after]`` for every setting that differs."""
    diff: dict[str, dict[str, list[Any]]] = {}
    for stage in sorted(set(before) | set(after)):
        a, b = _flatten(before.get(stage) or {}), _flatten(after.get(stage) or {})
        changed = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        if changed:
            diff[stage] = changed
    return diff


def build_changelog(
    previous: Snapshot | None,
    current: Snapshot,
    *,
    version: int,
    previous_version: int | None = None,
    previous_created_at: str | None = None,
    previous_configs: Mapping[str, Any] | None = None,
    current_configs: Mapping[str, Any] | None = None,
) -> Changelog:
    """Compare two snapshots (pure). With no previous release every row is ``added``."""
    log = Changelog(
        version=version, previous_version=previous_version, previous_created_at=previous_created_at
    )
    before = previous or {}
    for config in sorted(set(before) | set(current)):
        old, new = before.get(config, {}), current.get(config, {})
        change = ConfigChange()
        for key in set(old) | set(new):
            if key not in old:
                kind, category = "added", new[key][0]
            elif key not in new:
                kind, category = "removed", old[key][0]
            else:
                kind = "unchanged" if old[key][1] == new[key][1] else "changed"
                category = new[key][0]
            for bucket in (change.total, change.by_category.setdefault(category, CountChange())):
                setattr(bucket, kind, getattr(bucket, kind) + 1)
        change.by_category = dict(sorted(change.by_category.items()))
        log.configs[config] = change
    log.config_diff = (
        config_diff(previous_configs or {}, current_configs or {}) if previous is not None else {}
    )
    return log


def render_changelog(log: Changelog) -> Markdown:
    """The changelog as Markdown (for ``CHANGELOG.md`` and the dataset card); every value a code span."""
    if log.previous_version is None:
        head = f"Release {log.version}: the first release of this dataset (every row is new)."
    else:
        head = f"Release {log.version}, against release {log.previous_version} ({code(log.previous_created_at)})."
    lines = [
        head,
        "",
        "| config | category | added | removed | changed | unchanged |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for config, change in log.configs.items():
        t = change.total
        lines.append(f"| {code(config)} | **all** | {t.added} | {t.removed} | {t.changed} | {t.unchanged} |")
        for category, c in change.by_category.items():
            if c.added or c.removed or c.changed:
                lines.append(
                    f"| {code(config)} | {code(category)} | {c.added} | {c.removed} | {c.changed} | {c.unchanged} |"
                )
    if log.previous_version is not None:
        lines.append("")
        if not log.config_diff:
            lines.append("Pipeline config: unchanged.")
        else:
            lines.append("Pipeline config changes:")
            lines.append("")
            for stage, keys in log.config_diff.items():
                for key, (a, b) in keys.items():
                    lines.append(f"- {code(f'{stage}.{key}')}: {code(json.dumps(a))} → {code(json.dumps(b))}")
    return Markdown("\n".join(lines) + "\n")

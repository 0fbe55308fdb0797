"""Offline copies of lm-evaluation-harness tasks: the stock task configs, rewritten to read local files.

Offline data (``data_dir``): the stock tasks load their data from the Hub (``openai/gsm8k``, ``cais/mmlu``).
With ``data_dir`` set, every requested task that has a folder ``data_dir/<task>/`` runs the stock task config
on local files instead (a generated YAML ``include``-s the stock one and replaces only where the data comes
from). The layout, one folder per task named as the lm-eval task or group::

    data_dir/
      gsm8k/test.jsonl, train.jsonl          # openai/gsm8k columns: question, answer ("... #### 42")
      mmlu/test.jsonl, dev.jsonl             # cais/mmlu "all" columns: question, subject, choices, answer (0-3)

A split is the file ``<split>.jsonl|.json|.parquet|.csv`` or Hub shards ``<split>-*.parquet``, looked for first
in the sub-folder named after the task's ``dataset_name`` (``gsm8k/main/``, ``mmlu/anatomy/``: a Hub snapshot),
then in the task folder. The split names are the stock task's own (``test_split``, ``fewshot_split``, ...);
the few-shot split is needed only when few-shot examples are used. For a group (``mmlu``) each subtask takes its
``dataset_name`` sub-folder, or the rows of the task folder's files whose ``subject`` column equals its
``dataset_name``; subjects without rows are left out of the group, which then averages over those present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cotforge.errors import ConfigError, StageInputError

SPLIT_KEYS = ("test_split", "validation_split", "training_split", "fewshot_split")
SUFFIX_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
GROUP_ROW_COLUMN = "subject"  # the column that says which subtask a row of a flat group file belongs to


def find_split_files(folders: Sequence[Path], split: str) -> list[Path]:
    """The files holding ``split`` in the first of ``folders`` that has any (``[]`` when none has)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for suffix in SUFFIX_BUILDERS:
            single = folder / f"{split}{suffix}"
            if single.is_file():
                return [single]
        shards = sorted(folder.glob(f"{split}-*.parquet"))
        if shards:
            return shards
    return []


def _builder(task: str, files: Mapping[str, list[Path]]) -> str:
    builders = {SUFFIX_BUILDERS[p.suffix] for paths in files.values() for p in paths}
    if len(builders) != 1:
        listed = ", ".join(str(p) for paths in files.values() for p in paths)
        raise ConfigError(f"utility task {task}: its splits mix file formats ({listed}); use one format")
    return builders.pop()


def _split_names(cfg: Mapping[str, Any], num_fewshot: int | None) -> tuple[str, list[str], str | None]:
    """The split scored, every split the stock config names, and the few-shot split when shots are used."""
    scored = cfg.get("test_split") or cfg.get("validation_split")
    if not scored:
        raise ConfigError(
            f"utility task {cfg.get('task')}: its lm-eval config names no test or validation split"
        )
    named = list(dict.fromkeys(str(cfg[k]) for k in SPLIT_KEYS if cfg.get(k)))
    shots = num_fewshot if num_fewshot is not None else int(cfg.get("num_fewshot") or 0)
    fewshot = cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
    return str(scored), named, str(fewshot) if shots > 0 and fewshot else None


def leaf_override(
    stock_yaml: Path, stock_cfg: Mapping[str, Any], builder: str, files: Mapping[str, list[Path]]
) -> dict[str, Any]:
    """A task config that includes the stock one and reads its splits from local ``files`` instead of the Hub.

    A split the stock config names but ``files`` lacks is unset, since the harness reads every named split.
    """
    data_files = {split: [str(p.resolve()) for p in paths] for split, paths in files.items()}
    unset = {k: None for k in SPLIT_KEYS if stock_cfg.get(k) and str(stock_cfg[k]) not in files}
    return {
        "include": str(stock_yaml.resolve()),
        "task": stock_cfg["task"],
        "dataset_path": builder,
        "dataset_name": None,
        "dataset_kwargs": {"data_files": data_files},
        **unset,
        # Tags would re-register the stock tag (e.g. mmlu_stem_tasks) with only these subtasks.
        "tag": [],
    }


def _read_rows(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=path.suffix == ".jsonl")


def _local_leaf_files(
    entry: Any, folder: Path, staging: Path, num_fewshot: int | None, *, in_group: bool
) -> dict[str, list[Path]] | None:
    """The split files of one task (its own files, or in a group its rows cut from the group's flat files)."""
    cfg = entry.cfg or {}
    scored, named, fewshot = _split_names(cfg, num_fewshot)
    dataset_name = cfg.get("dataset_name")
    own = [folder / str(dataset_name)] if dataset_name else []
    if not find_split_files([*own, folder], scored):
        return None
    files = {s: found for s in named if (found := find_split_files([*own, folder], s))}
    if fewshot is not None and fewshot not in files:
        raise StageInputError(
            f"utility task {entry.name}: few-shot examples come from split {fewshot!r}, which has no file in "
            f"{folder}; add {fewshot}.jsonl there or set num_fewshot: 0",
            file=folder,
        )
    if in_group and dataset_name and not find_split_files(own, scored):
        cut: dict[str, list[Path]] = {}
        for split, paths in files.items():
            rows = pd.concat([_read_rows(p) for p in paths], ignore_index=True)
            if GROUP_ROW_COLUMN not in rows.columns:
                raise StageInputError(
                    f"utility task {folder.name}: {paths[0]} has no `{GROUP_ROW_COLUMN}` column to pick "
                    f"{entry.name}'s rows; add it or put its files under {folder / str(dataset_name)}/",
                    file=paths[0],
                )
            rows = rows[rows[GROUP_ROW_COLUMN] == dataset_name]
            if rows.empty:
                if split == scored:
                    return None
                if split == fewshot:
                    raise StageInputError(
                        f"utility task {entry.name}: no `{GROUP_ROW_COLUMN}` == {dataset_name!r} rows in {paths[0]} "
                        "for its few-shot examples; add some or set num_fewshot: 0",
                        file=paths[0],
                    )
                continue
            out = staging / "data" / entry.name / f"{split}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            rows.to_json(out, orient="records", lines=True, force_ascii=False)
            cut[split] = [out]
        files = cut
    return files


def _leaves(index: Mapping[str, Any], name: str) -> list[Any]:
    """The task entries under a group (recursively through subgroups and tags)."""
    entry = index[name]
    kind = entry.kind.name
    if kind in ("TASK", "PY_TASK"):
        return [entry]
    members = sorted(entry.tags) if kind == "TAG" else list((entry.cfg or {}).get("task") or [])
    out: list[Any] = []
    for member in members:
        if not isinstance(member, str) or member not in index:
            raise ConfigError(
                f"utility task {name}: member {member!r} is not a named lm-eval task; run it online"
            )
        out += _leaves(index, member)
    return out


def write_offline_tasks(
    index: Mapping[str, Any],
    tasks: Sequence[str],
    data_dir: Path,
    staging: Path,
    num_fewshot: int | None = None,
) -> list[str]:
    """Write task YAMLs into ``staging`` that run the stock ``tasks`` on the files under ``data_dir``.

    ``index`` is lm-eval's task index (``TaskManager().task_index``). Returns the tasks given local data;
    a task with no ``data_dir/<task>/`` folder is left to its stock config.
    """
    overridden = []
    for task in tasks:
        folder = data_dir / task
        if not folder.is_dir():
            continue
        if task not in index:
            raise ConfigError(f"utility task {task!r} is not an lm-eval task (nor in include_path)")
        entry = index[task]
        if entry.kind.name == "PY_TASK" or entry.yaml_path is None:
            raise ConfigError(
                f"utility task {task}: a Python-defined lm-eval task cannot be pointed at local files"
            )
        if entry.kind.name == "TASK":
            files = _local_leaf_files(entry, folder, staging, num_fewshot, in_group=False)
            if files is None:
                raise StageInputError(f"utility task {task}: no test split file in {folder}", file=folder)
            _write_yaml(
                staging / f"{task}.yaml",
                leaf_override(entry.yaml_path, entry.cfg, _builder(task, files), files),
            )
        else:
            present = []
            for leaf in _leaves(index, task):
                files = _local_leaf_files(leaf, folder, staging, num_fewshot, in_group=True)
                if files is not None:
                    override = leaf_override(leaf.yaml_path, leaf.cfg, _builder(leaf.name, files), files)
                    _write_yaml(staging / f"{leaf.name}.yaml", override)
                    present.append(leaf.name)
            if not present:
                raise StageInputError(f"utility task {task}: no subtask has rows in {folder}", file=folder)
            group = {k: v for k, v in (entry.cfg or {}).items() if k in ("aggregate_metric_list", "metadata")}
            group |= {"group": task, "task": present}
            _write_yaml(staging / f"{task}.yaml", group)
        overridden.append(task)
    return overridden


def _write_yaml(path: Path, cfg: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(cfg), sort_keys=False), encoding="utf-8")

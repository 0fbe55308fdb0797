"""`release build`: Parquet per config, schemas, dataset card; loaded back with `datasets` and `DatasetCard`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard
from run_factory import SECRET, TEACHER, TEMPLATE_HASHES, BuiltRun

from cotforge.errors import CotforgeError
from cotforge.release.build import build_release
from cotforge.release.config import ReleaseConfig
from cotforge.release.manifest import ReleaseError, ReleaseResult
from cotforge.runfolder import RunFiles, RunFolder, RunFolderError, file_sha256
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import EXPORTED_MODELS, PreferencePair


def manifest_files(out: Path) -> dict[str, str]:
    return {
        k: v["file"]
        for k, v in json.loads((out / "release.json").read_text())["configs"].items()
        if v["file"]
    }


def load(folder: str | Path, config: str) -> Dataset:
    """Load a config of a release folder with a private cache.

    ``datasets`` 5.2 names its cache of a local folder by the folder's name and config, not its contents: a
    rebuilt release (or another test's) would otherwise be served from a stale cache.
    """
    cache = Path(folder).parent / f".hf-cache-{Path(folder).name}"
    return load_dataset(
        str(folder), config, split="train", cache_dir=str(cache), download_mode="force_redownload"
    )


@pytest.mark.unit
def test_release_loads_back_with_datasets_and_the_card(released: tuple[BuiltRun, ReleaseResult]) -> None:
    run, result = released
    out = Path(result.out_dir)
    assert out == run.root / "release" and result.included == ["sft", "preference", "rejects"]

    sft = load(out, "sft")
    pairs = load(out, "preference")
    rejects = load(out, "rejects")
    # 7 reviewed samples (one of them a correction); every pair; 5 reject records + 1 review rejection.
    assert len(sft) == len(run.reviewed) == 7 and result.rows["sft"] == 7
    assert len(pairs) == len(run.pairs) == 11
    assert len(rejects) == sum(len(r) for r in run.rejects.values()) + 1 == 6
    assert sft[0]["messages"][1]["role"] == "assistant" and "</think>" in sft[0]["completion"]
    assert pairs[0]["prompt"][-1]["role"] == "user" and isinstance(pairs[0]["w_rs"], float)

    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "mit" and data["task_categories"] == ["text-generation"]
    assert [c["config_name"] for c in data["configs"]] == ["sft", "preference", "rejects"]
    sft_file = manifest_files(out)["sft"]
    assert data["configs"][0]["data_files"] == [{"split": "train", "path": sft_file}]
    assert sft_file.startswith("sft/train-00000-of-00001-") and sft_file.endswith(".parquet")
    text = card.text
    assert "Content warning" in text and "load_dataset(" in text
    assert TEACHER in text and all(h in text for h in TEMPLATE_HASHES.values())
    assert "9f" * 32 in text  # the pipeline config hash
    assert "`argilla`" in text and "`accepted` 6, `corrected` 1, `rejected` 1" in text  # review statistics
    assert "rule-v1" in text and "| pairs | 11 |" in text

    manifest = json.loads((out / "release.json").read_text())
    assert sorted(manifest["files"]) == sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != "release.json"
    )
    assert all(file_sha256(out / name) == digest for name, digest in manifest["files"].items())
    assert {f"schemas/{m.__name__}.schema.json" for m in EXPORTED_MODELS} <= set(manifest["files"])
    schema = json.loads((out / "schemas" / "PreferencePair.schema.json").read_text())
    assert schema["title"] == "PreferencePair" and "weights" in schema["properties"]
    stage = load_manifest(RunFolder(run.root), "release")
    assert stage is not None and stage.status == "completed" and stage.counts["preference_rows"] == 11
    assert "release/README.md" in stage.outputs and RunFiles.PAIRS in stage.inputs


@pytest.mark.unit
def test_every_released_row_traces_back_to_its_records(released: tuple[BuiltRun, ReleaseResult]) -> None:
    run, result = released
    out = result.out_dir
    prompts = {p.id: p for p in [*run.prompts, *run.augmented]}
    samples = {s.id: s for s in [*run.samples, *run.reviewed]}
    review = {v.sample_id: v for v in run.review_verdicts}
    for row in load(out, "sft"):
        sample, prompt = samples[row["id"]], prompts[row["prompt_id"]]
        assert row["prompt"] == prompt.text and row["prompt_source"] == prompt.source
        assert row["prompt_licence"] == prompt.licence and row["category"] == prompt.category
        assert row["template_id"] == sample.template_id and row["template_hash"] == sample.template_hash
        assert row["teacher_model"] == TEACHER and row["sampling"] == sample.sampling.model_dump()
        verdict = review[sample.parent_sample_id or sample.id]
        assert row["review_outcome"] == verdict.outcome and row["reviewers"] == ["alice", "bob"]
        assert row["validation_outcome"] == "accepted"
        if sample.revision:
            assert row["review_outcome"] == "corrected" and row["parent_sample_id"] == sample.parent_sample_id

    pairs = {p.id: p for p in run.pairs}
    candidates = {c.id: c for c in run.candidates}
    seen_sources = set()
    for row in load(out, "preference"):
        pair: PreferencePair = pairs[row["pair_id"]]
        seen_sources.add(row["source"])
        assert row["source"] == pair.source and row["prompt_id"] == pair.prompt_id
        assert (row["chosen_id"], row["rejected_id"]) == (pair.chosen_id, pair.rejected_id)
        assert row["prompt_source"] == prompts[pair.prompt_id].source
        if pair.rejected_scores is not None:
            assert row["rejected_scores"] == pair.rejected_scores.model_dump()
        lineage = json.loads(row["lineage"])
        assert lineage["pair"] == pair.lineage
        if pair.chosen_id in candidates:
            assert lineage["chosen"] == {
                "type": "policy_candidate", "id": pair.chosen_id, "policy_model": "models/sft", "index": 0,
            }  # fmt: skip
        if pair.source == "synthetic_corruption":
            assert lineage["rejected"] == {
                "type": "derived",
                "id": pair.rejected_id,
                "from_sample": pair.chosen_id,
            }
            assert lineage["chosen"]["template_hash"] == TEMPLATE_HASHES["teacher/safety"]
        if pair.source == "review_correction":
            assert lineage["chosen"]["review_outcome"] == "corrected"
        if prompts[pair.prompt_id].parent_id:  # a jailbreak variant names its original prompt and tactic
            assert row["parent_prompt_id"] == prompts[pair.prompt_id].parent_id and row["tactic"]
    assert seen_sources == {"judge", "teacher_vs_policy", "synthetic_corruption", "review_correction"}

    rejects = load(out, "rejects")
    keys = {(r["file"], r["line"], r["record_id"]) for r in rejects}
    for name, records in run.rejects.items():
        assert {(name, r.line, r.record_id) for r in records} <= keys
    review_rejected = [v.sample_id for v in run.review_verdicts if v.outcome == "rejected"]
    assert [r["record_id"] for r in rejects if r["stage"] == "review"] == review_rejected


@pytest.mark.unit
def test_no_secret_endpoint_or_local_path_reaches_the_release(
    released: tuple[BuiltRun, ReleaseResult],
) -> None:
    run, result = released
    generate = json.loads((run.root / "manifests" / "generate.json").read_text())
    assert generate["config"]["teacher"]["api_key"] == "<redacted>"  # StageRun scrubbed the run's manifest
    for path in Path(result.out_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert b"127.0.0.1:8011" not in data, path  # the teacher's endpoint is not provenance
            assert str(run.root.resolve()).encode() not in data, path


@pytest.mark.unit
def test_a_rebuild_replaces_the_release_and_an_empty_config_is_left_out(built_run: BuiltRun) -> None:
    out = built_run.root / "release"
    build_release(built_run.root)
    # One shared datasets cache across rebuilds: a rebuilt release must not be served from the old one.
    cache = str(built_run.root.parent / "shared-hf-cache")
    assert len(load_dataset(str(out), "sft", split="train", cache_dir=cache)) == 7
    reviewed = (built_run.root / RunFiles.REVIEWED).read_text().splitlines()
    (built_run.root / RunFiles.REVIEWED).write_text("\n".join(reviewed[:-1]) + "\n")
    (built_run.root / RunFiles.PAIRS).write_text("", encoding="utf-8")
    result = build_release(built_run.root)
    assert result.included == ["sft", "rejects"] and "holds no pairs" in result.left_out["preference"]
    assert not (out / "preference").exists()  # the old file went with the old release
    card = DatasetCard.load(out / "README.md")
    assert [c["config_name"] for c in card.data.to_dict()["configs"]] == ["sft", "rejects"]
    assert "**not included**: pairs.jsonl holds no pairs" in card.text
    assert len(load_dataset(str(out), "sft", split="train", cache_dir=cache)) == 6
    assert not list(built_run.root.glob(".release.*"))  # no temp folders left behind


@pytest.mark.unit
def test_missing_and_bad_inputs_name_the_file_and_what_to_do(built_run: BuiltRun, tmp_path: Path) -> None:
    root = built_run.root
    # A corrupt line: the error names file and line; the previous release is kept.
    build_release(root, ReleaseConfig(configs=["sft"]))
    before = (root / "release" / "release.json").read_bytes()
    lines = (root / RunFiles.PAIRS).read_text().splitlines()
    (root / RunFiles.PAIRS).write_text("\n".join([*lines[:2], '{"id": "broken"', *lines[2:]]) + "\n")
    with pytest.raises(RunFolderError, match=r"pairs\.jsonl:3: not a valid PreferencePair"):
        build_release(root)
    assert (root / "release" / "release.json").read_bytes() == before
    assert load_manifest(RunFolder(root), "release").status == "failed"  # type: ignore[union-attr]

    only_prompts = tmp_path / "fresh"
    only_prompts.mkdir()
    (only_prompts / RunFiles.PROMPTS).write_bytes((root / RunFiles.PROMPTS).read_bytes())
    with pytest.raises(
        RunFolderError, match=r"no reviewed\.jsonl or accepted\.jsonl; run `cotforge generate"
    ):
        build_release(only_prompts)
    with pytest.raises(RunFolderError, match=r"pairs\.jsonl: not found; run `cotforge pairs"):
        build_release(only_prompts, ReleaseConfig(configs=["preference"]))
    with pytest.raises(ReleaseError, match="nothing to release"):
        build_release(only_prompts, ReleaseConfig(configs=["rejects"]))

    occupied = tmp_path / "somebody-else"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    with pytest.raises(ReleaseError, match="not a cotforge release folder"):
        build_release(root, out_dir=occupied)
    assert (occupied / "notes.txt").read_text() == "keep me"
    with pytest.raises(CotforgeError, match="does not exist"):
        build_release(tmp_path / "nope")
    with pytest.raises(ValueError, match="extra"):
        ReleaseConfig.model_validate({"outt": "x"})

"""Stage configs on the command line: --config and --set on every stage command, precedence, errors that name
the file or --set item and the key, and help text read from the config's fields."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.cli.config_options import StageConfig, nested
from cotforge.cli.generation import GENERATE
from cotforge.cli.train import AWDPO, SFT
from cotforge.errors import ConfigError

pytestmark = pytest.mark.unit

# Commands that run no stage (a pipeline or a sweep of pipelines, schema export, a server, a query of the
# ledger): no stage config.
NOT_STAGES = {"run", "schemas", "review serve", "serve", "trace", "experiment sweep"}


def leaf_commands(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = getattr(group, "commands", None)
    if commands is None:
        return [path]
    return [leaf for name, sub in sorted(commands.items()) for leaf in leaf_commands(sub, (*path, name))]


COMMANDS = leaf_commands(typer.main.get_command(app))
STAGE_COMMANDS = [c for c in COMMANDS if c[0] not in NOT_STAGES and " ".join(c) not in NOT_STAGES]


def test_the_stage_commands_are_all_there() -> None:
    names = {" ".join(c) for c in STAGE_COMMANDS}
    expected = {"ingest", "generate", "validate", "review push", "review pull", "augment", "sample", "judge"}
    expected |= {"pairs", "eval", "release build", "report", "train sft", "train awdpo"}
    assert expected <= names


@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=" ".join)
def test_every_stage_command_lists_config_and_set(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--config" in result.output and "--set" in result.output
    assert "Config keys (" in result.output  # the key table read from the config model


@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=" ".join)
def test_each_flag_is_spelt_like_its_parameter(command: tuple[str, ...]) -> None:
    # Errors name a flag as --<parameter name>, so the two must agree.
    group: Any = typer.main.get_command(app)
    for name in command:
        group = group.commands[name]
    stage = getattr(type(group), "stage", None)
    assert stage is not None, f"{' '.join(command)} does not build its config with a StageConfig"
    options = {p.name: p.opts for p in group.params}
    for param in stage.flags:
        assert "--" + param.replace("_", "-") in options[param], (param, options[param])


def test_flag_help_and_defaults_come_from_the_config_fields() -> None:
    result = CliRunner().invoke(app, ["train", "awdpo", "--help"], env={"COLUMNS": "250"})
    lines = result.output.splitlines()
    aggregation = next(line for line in lines if "--aggregation" in line)
    assert "One of: loss, reward, vanilla" in result.output and "(config key: aggregation)" in result.output
    assert "paper Eq. 4" in aggregation
    # Every key of the config is in the table with its own default (AW-DPO's learning rate, not SFT's).
    row = next(line for line in lines if line.strip().startswith("learning_rate "))
    assert "1e-06" in row and "Peak learning rate" in row
    assert any(line.strip().startswith("lora.r ") and " 16 " in line for line in lines)


def test_precedence_file_then_set_then_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "sft.yaml"
    config_file.write_text("model: from-file\nlearning_rate: 0.1\nmax_steps: 7\nseed: 3\nlora: {r: 4}\n")
    config = SFT.build(
        config_file, ["learning_rate=0.2", "max_steps=9", "lora.alpha=8"], model="from-flag", max_steps=11
    )
    assert config.model == "from-flag"  # flag over file
    assert config.learning_rate == 0.2  # --set over file
    assert config.max_steps == 11  # flag over --set over file
    assert config.seed == 3  # file over default
    assert config.lora is not None and (config.lora.r, config.lora.alpha) == (4, 8)  # nested keys merge
    assert config.epochs == 1.0 and config.batch_size == 4  # the config's defaults, not the CLI's


def test_a_flag_not_given_does_not_override_and_zero_is_given(tmp_path: Path) -> None:
    config = GENERATE.build(
        None, ["teacher.sampling.temperature=0.9"], model="m", temperature=0.0, refresh=None
    )
    assert config.teacher.sampling.temperature == 0.0 and config.refresh is False
    assert nested({"a.b": 0, "a.c": False, "d": None}) == {"a": {"b": 0, "c": False}}


@pytest.mark.parametrize(
    ("file_text", "sets", "flags", "expected"),
    [
        (
            "model: m\nlearnig_rate: 0.1\n",
            [],
            {},
            ["{file}: learnig_rate: unknown key", "cotforge train sft --help"],
        ),
        ("model: m\n", ["max_steps=0"], {}, ["--set max_steps=0: max_steps:", "greater than or equal to 1"]),
        ("model: m\n", ["lora.rank=4"], {}, ["--set lora.rank=4: lora.rank: unknown key"]),
        ("model: m\n", [], {"max_steps": -1}, ["--max-steps: max_steps:"]),
        ("model: m\nprecision: fp16\n", [], {}, ["{file}: precision:", "'auto', 'fp32' or 'bf16'"]),
    ],
)
def test_a_bad_key_or_value_is_named_with_its_source(
    tmp_path: Path, file_text: str, sets: list[str], flags: dict[str, object], expected: list[str]
) -> None:
    config_file = tmp_path / "train.yaml"
    config_file.write_text(file_text)
    with pytest.raises(ConfigError) as caught:
        SFT.build(config_file, sets, **flags)
    for part in expected:
        assert part.format(file=config_file) in str(caught.value)


def test_a_missing_required_key_says_how_to_give_it() -> None:
    with pytest.raises(ConfigError, match=r"model: required \(model\): pass --model or --set model=…"):
        AWDPO.build(None, ["beta=0.2"])
    with pytest.raises(
        ConfigError, match=r"required \(teacher.model\): pass --model or --set teacher.model=…"
    ):
        GENERATE.build(None, None)


def test_bad_input_through_the_command_line_exits_1_without_a_traceback(tmp_path: Path) -> None:
    config_file = tmp_path / "awdpo.yaml"
    config_file.write_text("model: m\nbeta: 0.1\n")
    run = ["train", "awdpo", "--run", str(tmp_path / "run"), "--config", str(config_file)]
    for extra, expected in [
        (["--set", "bta=0.2"], "--set bta=0.2: bta: unknown key"),
        (["--set", "beta"], "expected key=value"),
        (["--set", "steps.x=1"], "a stage config has no steps"),
        (["--aggregation", "mean"], "--aggregation: aggregation:"),
    ]:
        result = CliRunner().invoke(app, [*run, *extra])
        assert result.exit_code == 1, result.output
        assert expected in result.output and "Traceback" not in result.output
    config_file.write_text("- not a mapping\n")
    result = CliRunner().invoke(app, run)
    assert result.exit_code == 1 and f"{config_file}: expected a mapping" in result.output


def test_awdpo_without_a_model_points_to_the_sft_stage(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "awdpo", "--run", str(tmp_path)])
    assert result.exit_code == 1 and "cotforge train sft" in result.output
    # A model named in the config file is enough: no SFT folder needed to get past the model check.
    config = AWDPO.raw(None, ["model=elsewhere"])
    assert config == {"model": "elsewhere"}


def test_a_flag_must_be_declared_for_its_config() -> None:
    stage = StageConfig("cotforge.train.config:SFTTrainConfig", {"model": "model"}, "train sft")
    with pytest.raises(TypeError, match="not declared"):
        stage.build(None, [], model="m", lr=0.1)


def test_building_the_command_line_imports_no_stage_module() -> None:
    # The help text is read from the configs only when --help is printed, so `cotforge --help` stays fast.
    code = (
        "import sys, typer.main; from cotforge.cli import app; typer.main.get_command(app); "
        "print(sorted(m for m in sys.modules if m in {"
        "'cotforge.generation.requests', 'cotforge.train.config', 'cotforge.evaluation.run', "
        "'cotforge.release.build', 'cotforge.report', 'cotforge.pairs.sampling', 'torch', 'trl'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_misspelt_key_is_answered_with_the_key_it_most_likely_meant() -> None:
    from cotforge.cli.config_options import near_key
    from cotforge.pairs.build import PairsConfig

    assert near_key(PairsConfig, "gama") == "gamma"
    assert near_key(PairsConfig, "max_disagrement") == "max_disagreement"
    assert near_key(PairsConfig, "zzz") is None  # nothing close: no guess
    assert near_key(GENERATE.model(), "teacher.concurency") == "teacher.concurrency"
    assert near_key(GENERATE.model(), "nosuch.concurency") is None
    with pytest.raises(ConfigError, match=r"did you mean `teacher\.concurrency`"):
        GENERATE.build(None, ["teacher.concurency=3"], model="m")
